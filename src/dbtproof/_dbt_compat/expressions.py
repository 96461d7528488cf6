"""Rendering a model whose only Jinja is ``{{ expressions }}``, one expression at a time.

dbt compiles the whole model's text into a Python function on every render (lexing,
parsing, generating and compiling Python: about 1 ms for a 5-line model), and every
model's text is different. Most models are SQL text with a few ``{{ ref('x') }}`` /
``{{ source('a', 'b') }}`` / ``{{ config(...) }}`` expressions, and those repeat from
model to model. For such text, each expression is compiled alone, as the template
``{{ expression }}`` in dbt's own Jinja environment (cached by its text), and the
pieces are rendered in order in one Jinja context — what the whole template does:
Jinja outputs template data as is and each ``{{ }}`` as the value of its expression,
left to right. Anything else — a ``{% %}`` or ``{# #}`` tag, whitespace control
(``{{-``, ``-}}``), a brace inside an expression, a carriage return (Jinja turns it
into a newline), an expression that does not compile alone — goes through dbt.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
#: dbt's test for "this text has Jinja in it" (dbt.clients.jinja._HAS_RENDER_CHARS_PAT).
_JINJA_CHARS = re.compile(r"({[{%#]|[#}%]})")


class ExpressionPlan(NamedTuple):
    """A text whose only Jinja is ``{{ expressions }}``, ready to render piece by piece."""

    #: The template data around the expressions (one more piece than expressions).
    data: list[str]
    #: Each expression, compiled as the template ``{{ expression }}``.
    templates: list[Any]
    #: The names the expressions read from the context.
    names: frozenset[str]


class CompiledExpressions:
    """dbt's Jinja environment for SQL, and each ``{{ expression }}`` compiled in it once
    (at most 5000 kept; then it starts anew)."""

    _MAX = 5000

    def __init__(self) -> None:
        self._environment: Any = None
        #: Expression text -> (compiled template, the names it reads), or False when it
        #: does not compile alone.
        self._compiled: dict[str, Any] = {}

    def environment(self) -> Any:
        """dbt's Jinja environment for rendering SQL (as ``get_rendered`` makes it)."""
        if self._environment is None:
            from dbt_common.clients.jinja import get_environment

            self._environment = get_environment(None, capture_macros=False, native=False)
        return self._environment

    def template(self, expression: str) -> tuple[Any, frozenset[str]] | None:
        """The compiled template ``{{ expression }}`` and the names it reads from the context,
        or None if it does not compile alone."""
        compiled = self._compiled.get(expression)
        if compiled is None:
            import jinja2
            import jinja2.meta

            environment = self.environment()
            try:
                tree = environment.parse("{{" + expression + "}}")
                names = frozenset(jinja2.meta.find_undeclared_variables(tree))
                compiled = (environment.from_string(tree), names)
            except jinja2.TemplateError:
                compiled = False
            if len(self._compiled) >= self._MAX:
                self._compiled.clear()
            self._compiled[expression] = compiled
        return compiled or None

    def plan(self, text: str) -> ExpressionPlan | None:
        """*text* as template data and compiled expressions, or None when it has more Jinja
        than ``{{ expressions }}`` (or none: dbt returns such text as is)."""
        if "{{" not in text or "\r" in text:
            return None
        source = text
        if not self.environment().keep_trailing_newline and source.endswith("\n"):
            source = source[:-1]  # as Jinja's lexer does
        pieces = _EXPRESSION.split(source)
        data = pieces[0::2]
        if any(_JINJA_CHARS.search(piece) for piece in data):
            return None
        templates = []
        names: set[str] = set()
        for expression in pieces[1::2]:
            if "{" in expression or "}" in expression or expression[:1] in "-+":
                return None  # a brace (string, dict), whitespace control ({{- / {{+)
            if expression.endswith("-"):
                return None  # whitespace control (-}})
            compiled = self.template(expression)
            if compiled is None:
                return None
            templates.append(compiled[0])
            names |= compiled[1]
        return ExpressionPlan(data, templates, frozenset(names))

    def render(self, plan: ExpressionPlan, ctx: dict[str, Any], node: Any) -> str:
        """The plan's data and expressions, rendered in order in one Jinja context of *ctx*
        (errors raised as dbt's ``get_rendered`` raises them for *node*)."""
        from dbt_common.clients.jinja import catch_jinja

        environment = self.environment()
        out = [plan.data[0]]
        with catch_jinja(node):
            context = plan.templates[0].new_context(ctx)
            for template, after in zip(plan.templates, plan.data[1:], strict=True):
                try:
                    out.append(environment.concat(template.root_render_func(context)))
                except Exception:
                    environment.handle_exception()
                out.append(after)
        return "".join(out)
