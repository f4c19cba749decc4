"""Modal dialogs for actions (cancel, finalize, tag, save version, reject pattern)."""
