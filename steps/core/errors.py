"""User-facing errors. Each one is a single line that says what is wrong and what to do;
the step CLI prints it as `error: ...` and exits non-zero without a traceback."""


class PaperzooError(Exception):
    """Base class: a problem the user can fix (bad input, missing artifact)."""

    exit_code = 1


class ConfigError(PaperzooError):
    """Unknown paper, scale or key, or a value of the wrong type. Raised before any work."""

    exit_code = 2


class ArtifactError(PaperzooError):
    """A dataset or checkpoint that is missing, truncated, fails its content hash or digest, or
    was built at another scale than the step that reads it."""

    exit_code = 3


def remedy(path, scale: str | None = None) -> str:
    """The standard advice for a missing or corrupt artifact at `path`: the Snakemake command
    that rebuilds it at `scale` (default: the running step's; `--config scale=<s>` unless mini),
    or DVC's restore."""
    from steps.core.provenance import rebuild_command  # lazy: provenance imports this module

    return (
        f"regenerate it with `{rebuild_command(path, scale)}` "
        f"or restore it with `dvc checkout {path}` (or `dvc pull`)"
    )
