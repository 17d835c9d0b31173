"""A plain script, run by cron or a scheduler, that never imports the app."""

from flask_maintenance import skip_during_maintenance


# Reads the lock file named by $MAINTENANCE_LOCK_FILE (or the Redis URL in $MAINTENANCE_BACKEND);
# lock_file="/srv/app/instance/maintenance.lock" or backend="redis://…" name it in the code.
@skip_during_maintenance()
def nightly_export():
    print("exported")
    return True


if __name__ == "__main__":
    nightly_export()
