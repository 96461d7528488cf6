"""Every exception class of dbtproof.

Every error a user can cause is a :class:`DbtproofError` (or a subclass) whose
message says what is wrong, where, and what to do about it. The outcomes of dbt's
own tests and builds as pytest items (failed, errored, warned) are at the end.
"""

from __future__ import annotations


class DbtproofError(Exception):
    """Base class of every error dbtproof raises for a user's mistake or a failed dbt run."""


class ProjectNotFoundError(DbtproofError):
    """No ``dbt_project.yml`` could be found where dbtproof looked."""


class ProjectConfigError(DbtproofError):
    """``dbt_project.yml`` or ``profiles.yml`` is missing, unreadable or inconsistent."""


class ConnectionFailedError(DbtproofError):
    """The connection to the warehouse failed: at the start (the preflight), or during a
    test, which then has no verdict and is reported as an error."""


class ConnectionFaultError(ConnectionFailedError):
    """The warehouse could not be reached, or a connection died under a test (refused,
    reset, terminated, a restart) and retrying did not help (see :mod:`dbtproof.safety.faults`)."""


class ConnectionAuthError(ConnectionFailedError):
    """The warehouse refused the login or a right while connecting (never retried)."""


class ProtectedTargetError(DbtproofError):
    """The selected target is protected (``prod`` and friends) and was not explicitly allowed."""


class CredentialError(DbtproofError):
    """A credential provider (``--dbt-credentials``) is misconfigured or cannot mint."""


class UntrustedCredentialsError(CredentialError):
    """Credentials would be minted for untrusted code (a fork's pull request on GitHub)."""


class IsolationError(DbtproofError):
    """A node would write outside the run's namespace."""


class DbtRunError(DbtproofError):
    """A dbt invocation failed, or one of the nodes it ran failed."""

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        #: The :class:`dbtproof.session.runner.InvocationResult` of the failed run, if there is one.
        self.result = result


class UnknownNodeError(DbtproofError):
    """A name given to ``dbt.table``, ``dbt.relation`` or ``dbt.compile`` names no node."""


class ComparisonSpecError(DbtproofError, ValueError):
    """A tolerance asked of a rows comparison is malformed (``rows.approx``, ``approx=``).

    Also a :class:`ValueError`, like the other errors of a malformed comparison.
    """


class RoleError(DbtproofError):
    """A role named by a ``grants:`` config, ``dbt.as_role`` or ``dbt_grant_roles`` does not
    exist in the test warehouse, or the test identity may not act as it; or roles were
    asked of an adapter dbtproof cannot act as a role on."""


class AccessDenied(DbtproofError):
    """Acting as a role (``dbt.as_role``, ``@pytest.mark.dbt_role``), a read was refused
    by the warehouse: what a consumer of that role may not see.

    ``role`` is the role acted as (after ``dbt_grant_roles``), ``relation`` what was refused.
    """

    def __init__(self, role: str, relation: str, reason: str = "") -> None:
        self.role = role
        self.relation = relation
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(f"dbtproof: role {role} may not read {relation}{detail}")


def skip_here(reason: str) -> None:
    """Skip the running test with *reason*, reported at the test's own location (not at the
    line of dbtproof that decided it), as a skip mark's is."""
    import pytest

    try:
        error = pytest.skip.Exception(reason, _use_item_location=True)  # type: ignore[call-arg]
    except TypeError:  # a pytest without the keyword: reported where raised
        error = pytest.skip.Exception(reason)
    raise error


class LeastPrivilegeError(DbtproofError):
    """``dbt_require_least_privilege = true`` and the test identity has rights a test run
    does not need (superuser, schemas outside the namespace, a protected target's schemas)."""


class EvidenceError(DbtproofError):
    """An evidence file (``--dbt-evidence``, ``dbtproof evidence``) cannot be written or read."""


# -- model unit tests (``dbt.run_model``) ------------------------------------------------


class ModelTestError(DbtproofError):
    """``dbt.run_model`` cannot run the model as asked (base class of the errors below)."""


class UnknownModelError(ModelTestError, UnknownNodeError):
    """The model to run is not a model of the project."""


class UnexpectedInputError(ModelTestError):
    """A ``given`` key names a relation the model does not reference."""


class InputKeyError(ModelTestError, TypeError):
    """A ``given`` key, or an argument of ``ref()`` / ``source()``, is not a name.

    Also a :class:`TypeError`: it is the wrong kind of value.
    """


class MissingInputError(ModelTestError):
    """The model reads an upstream relation (or ``this``) that the test did not give."""


class FixtureColumnError(ModelTestError):
    """A fixture has a column that its upstream relation does not have (or lacks needed ones)."""


class FixtureFormatError(ModelTestError):
    """A fixture cannot be read: unreadable or ragged CSV, unsupported type, bad rows."""


class FixtureValueError(ModelTestError):
    """A fixture value cannot be cast to its column's type."""


class UnknownMacroError(ModelTestError):
    """A ``macros=`` override names no macro of the project or its packages."""


class ModelRenderError(ModelTestError):
    """dbt could not render the model's SQL (a Jinja or compilation error)."""


class ModelSQLError(ModelTestError):
    """The database rejected the SQL that ran the model; the message shows that SQL."""


class UnknownColumnsError(ModelSQLError):
    """The database rejected the model's SQL, which reads every column (``select *``) of an
    input whose columns dbtproof cannot know: the fixture's were all it had."""


class IntrospectiveQueryError(ModelTestError):
    """A query the model ran while rendering (``run_query``, ``statement``) failed, and
    ``queries=`` gave no result for it; the message shows the query and how to give one."""


class UnitTestDefinitionError(DbtproofError):
    """A native unit test names an input or fixture dbtproof cannot read."""


class QueryKeyError(ModelTestError):
    """A ``queries=`` key is not a string or regex, matches no query the model ran, or
    matches a query another key matches too."""


# -- outcomes of dbt items (raised by dbtproof.plugin.items, reported by pytest) ---------------
# Not DbtproofError: these are dbt's verdicts on the project, not misuse of dbtproof.


class DbtTestWarning(UserWarning):
    """A dbt test with ``severity: warn`` found rows: it passes, with this warning."""


class DbtItemOutcome(Exception):
    """Base class of the outcomes of dbt's own nodes as pytest items (a build, a data
    test, a unit test, a grants check) that are not a pass: each item reports its own."""


class DbtItemSetupError(DbtItemOutcome):
    """Base class of the outcomes that leave an item without a verdict: raised during
    setup, so pytest reports an error (as dbt does), shown as the item describes it."""


class DbtTestFailed(DbtItemOutcome):
    """A dbt test found failing rows, or its SQL failed."""


class DbtUnitTestFailed(DbtItemOutcome):
    """A dbt unit test's model did not produce the expected rows (or could not run)."""


class DbtUnitTestError(DbtItemSetupError):
    """A dbt unit test could not run: its model's SQL, its fixtures or its YAML failed.

    Raised during setup, so pytest reports an error, as dbt does, not a failure.
    """


class DbtUpstreamError(DbtItemSetupError):
    """A dbt test (or build) could not run because a node it needs failed to build."""


class DbtConnectionFault(DbtItemSetupError):
    """The connection a dbt item's invocation used failed (refused, terminated, a restart):
    the item has no verdict. Raised during setup, so pytest reports an error."""


class DbtHookError(DbtItemSetupError):
    """A hook (``on-run-start``, ``on-run-end``) of the dbt invocation that ran an item failed.

    Raised during setup, so pytest reports an error of each item that invocation ran for.
    """


class DbtBuildFailed(DbtItemOutcome):
    """A model, seed or snapshot failed to build."""


class DbtGrantsMismatch(DbtItemOutcome):
    """A relation does not carry exactly the privileges its ``grants:`` config asks for."""


class DbtGrantsError(DbtItemSetupError):
    """A grants item cannot check: a grantee role is unknown to the test warehouse.

    Raised during setup, so pytest reports an error, never a pass or a failure.
    """


def __getattr__(name: str) -> type[DbtproofError]:
    """The base error's old name, deprecated for a release: it is :class:`DbtproofError`."""
    if name == "DbtError":
        import warnings

        warnings.warn(
            f"dbtproof: {name} is deprecated, use DbtproofError (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return DbtproofError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
