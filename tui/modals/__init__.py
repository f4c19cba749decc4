"""Modal dialogs that perform actions (cancel, finalize, tag, save version, approve/reject/archive a pattern)."""
