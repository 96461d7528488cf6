"""A generic data test compiled by dbt's compiler, its templates compiled once.

dbt's compiler renders each keyword argument of a generic test (``add_rendered_test_kwargs``:
``model`` is ``{{ get_where_subquery(ref('orders')) }}``, a relationships test's ``to`` is
``ref('customers')``) as a template of its own: a new Jinja environment, the string parsed
and compiled to Python, and the test's whole context (every macro of the project and its
packages) passed as the template's globals, which Jinja then copies key by key through a
``ChainMap`` into each render's context. On a 1,000-model project that was about 11 of the
14 ms a test's compile took.

:class:`KwargsRenderer` renders the same strings, in the same context, with the same native
environment and dbt's rules (a ``column_name`` left as it is, a bare ``ref(...)``,
``source(...)``, ``var(...)``, ``env_var(...)`` or ``doc(...)`` wrapped in braces, a string
without Jinja through dbt's own ``get_rendered`` and its cache), but compiles each distinct
string once, and its templates read the context through a ``ChainMap`` over Jinja's few
globals instead of a copy, as dbt's own ``MacroFuzzTemplate`` (every SQL render of dbt)
does: each name resolves to the same value as in dbt's copy (the context's, else Jinja's
global). The test's SQL (``{{ test_unique(**_dbt_generic_test_kwargs) }}``, the same string
for every ``unique`` test) is rendered the same way: its template compiled once, in dbt's
text environment, whose templates already read the context through a ``ChainMap``.
:func:`test_compiler` is dbt's ``Compiler`` with only those two renders replaced, for
generic tests (one that stores its failures is compiled by dbt's own code); everything else
(the context, the macros, ``ref``, ephemeral CTEs) is dbt's own.
``tests/unit/_dbt_compat/test_dbt_compat.py`` checks the arguments (values and types) and
the compiled SQL against dbt's on tests using each of dbt's rules.
"""

from __future__ import annotations

import re
from collections import ChainMap
from typing import Any

#: dbt's pattern (``add_rendered_test_kwargs``) of an argument that is one ``ref(...)``-like call.
LOOKS_LIKE_FUNC = re.compile(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$")


class KwargsRenderer:
    """Renders generic tests' keyword arguments as dbt does, each template compiled once."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, bool], Any] = {}
        self._environments: dict[bool, Any] = {}
        self._template_class: Any = None

    def render(self, context: dict[str, Any], node: Any) -> Any:
        """The keyword arguments of the generic test *node* rendered in its *context*, as
        dbt's ``add_rendered_test_kwargs`` renders them."""
        from dbt_common.utils import deep_map_render

        def convert(value: Any, keypath: tuple[str | int, ...]) -> Any:
            if isinstance(value, str):
                if keypath == ("column_name",):
                    return value  # dbt: column names stay strings, never native
                if LOOKS_LIKE_FUNC.match(value) is not None:
                    value = f"{{{{ {value} }}}}"
                value = self._rendered(value, context, node)
            return value

        return deep_map_render(convert, node.test_metadata.kwargs)

    def sql(self, raw_code: str, context: dict[str, Any], node: Any) -> str:
        """The test's SQL *raw_code* rendered in *context* (dbt's ``get_rendered``: its text
        environment, whose templates already read the context through a ``ChainMap``)."""
        return str(self._rendered(raw_code, context, node, native=False))

    def _rendered(
        self, string: str, context: dict[str, Any], node: Any, native: bool = True
    ) -> Any:
        """*string* rendered in *context* (dbt's ``get_rendered``, natively by default)."""
        from dbt.clients import jinja
        from dbt_common.clients.jinja import catch_jinja

        if not jinja._HAS_RENDER_CHARS_PAT.search(string):
            return jinja.get_rendered(string, context, node, native=native)  # dbt's own cache
        template = self._templates.get((string, native))
        if template is None:
            with catch_jinja(node):
                template = self._compiled(string, native)
            self._templates[(string, native)] = template
        with catch_jinja(node):
            return template.render(context)

    def _compiled(self, string: str, native: bool) -> Any:
        """*string* compiled in dbt's environment (the same for every node without
        ``capture_macros``); a native one as a :func:`_template_class` template."""
        from dbt_common.clients.jinja import get_environment

        if native not in self._environments:
            self._environments[native] = get_environment(None, capture_macros=False, native=native)
        if not native:
            return self._environments[native].from_string(string)
        if self._template_class is None:
            self._template_class = _template_class()
        return self._environments[native].from_string(string, template_class=self._template_class)


def _template_class() -> Any:
    """dbt's native template (``NativeSandboxTemplate``) whose render reads its variables
    through a ``ChainMap`` over Jinja's globals, as dbt's own ``MacroFuzzTemplate`` does,
    instead of copying them into a dict: a test's context is a mapping of every macro of
    the project, each read wrapped anew in a macro generator."""
    from dbt_common.clients.jinja import NativeSandboxTemplate

    class ChainedNativeTemplate(NativeSandboxTemplate):  # type: ignore[misc]
        def new_context(
            self,
            vars: dict[str, Any] | None = None,
            shared: bool = False,
            locals: Any = None,
        ) -> Any:
            if shared or locals:  # never asked by render: dbt's MacroFuzzTemplate's rule
                raise ValueError("a chained native template takes no shared or locals")
            found = {} if vars is None else vars
            parent = ChainMap(found, self.globals) if self.globals else found
            return self.environment.context_class(self.environment, parent, self.name, self.blocks)

    return ChainedNativeTemplate


def test_compiler(config: Any) -> Any:
    """dbt's ``Compiler`` for *config*, generic tests' keyword arguments rendered by a
    :class:`KwargsRenderer` of its own (each test's context otherwise dbt's own)."""
    from dbt.clients import jinja
    from dbt.compilation import Compiler
    from dbt.context.providers import generate_runtime_model_context
    from dbt.contracts.graph.nodes import GenericTestNode

    renderer = KwargsRenderer()

    class TestCompiler(Compiler):
        """dbt's compiler; a generic test's context as dbt's ``_create_node_context`` makes it."""

        def _create_node_context(
            self, node: Any, manifest: Any, extra_context: dict[str, Any]
        ) -> dict[str, Any]:
            if not isinstance(node, GenericTestNode):
                return super()._create_node_context(node, manifest, extra_context)
            context: dict[str, Any] = generate_runtime_model_context(node, self.config, manifest)
            context.update(extra_context)
            context[jinja.GENERIC_TEST_KWARGS_NAME] = renderer.render(context, node)
            return context

        def _compile_code(
            self, node: Any, manifest: Any, extra_context: dict[str, Any] | None = None
        ) -> Any:
            # dbt's own, but for a generic test's SQL template compiled once (dbt's steps
            # after the render only name a relation for a test that stores its failures)
            if not isinstance(node, GenericTestNode) or (
                node.relation_name is None and node.is_relational
            ):
                return super()._compile_code(node, manifest, extra_context)
            context = self._create_node_context(node, manifest, extra_context or {})
            node.compiled_code = renderer.sql(node.raw_code, context, node)
            node.compiled = True
            return node

    return TestCompiler(config)
