"""SVS: semantic validation of stage runs (preflight, pre-run review, during-run monitor, post-run
review, failure patterns). Import the submodules directly; this package imports nothing so that
``goldfish.svs.findings`` & co stay cheap. See docs/svs.md."""
