"""Where the maintenance state lives: one small interface, one module per backend."""

from __future__ import annotations

from .base import Backend as Backend
from .file import FileBackend as FileBackend
