"""A Jinja sandbox that bounds what a template may cost: time, work, nesting and output.

Prompt templates are written by anyone who edits the project, and a plan renders every
frame on every commit, so a template must not be able to hang or exhaust the machine.
Jinja's sandbox already refuses unsafe attributes; this environment adds, per render:

    loops        every `{% for %}` iterates through a counter (MAX_ITERATIONS in all)
    values       `*`, `**`, `+`, `%`, `~`, string methods and filters may not build a
                 string or list longer than MAX_VALUE, nor an integer past MAX_INT_BITS
    calls        at most MAX_CALLS calls, nested at most MAX_DEPTH deep (a macro calling
                 itself ends there)
    output       at most `max_output` characters written, counted as they are written
    time         a deadline, checked by all of the above

Any of them raises RenderLimit, a SecurityError, which the renderer reports at the
template's file and line, naming the frame. The hooks are Jinja's own: intercepted
binary operators, `call`, the `str.format` wrapper, wrapped filters, a counting template
class, and a rewrite of the parsed template that routes loops, `~` and buffered output
(macros, `{% set %}` blocks) through counting filters.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_VALUE = 1_000_000  # characters of a string, or items of a list, a template may build
MAX_INT_BITS = 4096
MAX_ITERATIONS = 1_000_000  # loop iterations in one render
MAX_CALLS = 100_000
MAX_DEPTH = 64
CHECK_EVERY = 256  # iterations between looks at the clock
CHUNKS_PER_COUNT = 16  # output chunks taken before they are counted (a render writes ~20)

_ITERATE, _CONCAT, _CHARGE = "_sandbox_iterate", "_sandbox_concat", "_sandbox_charge"
_SIZED = (str, list, tuple, dict, set, frozenset)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class RenderLimit(SecurityError):
    """A template went past one of the sandbox's bounds.

    `filename` and `lineno` say where, when the traceback cannot (output is counted after
    the template's generator handed it over, so its frame is no longer on the stack).
    """

    def __init__(self, message: str, filename: str | None = None, lineno: int = 0) -> None:
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno


class Budget:
    """What one render may still spend; the environment holds the current one."""

    __slots__ = ("calls", "deadline", "depth", "iterations", "max_output", "output", "seconds")

    def __init__(self, seconds: float, max_output: int) -> None:
        self.seconds = seconds
        self.max_output = max_output
        self.restart()

    def restart(self) -> Budget:
        """The whole budget again, its deadline `seconds` from now (one render each)."""
        self.deadline = time.monotonic() + self.seconds
        self.output = self.iterations = self.calls = self.depth = 0
        return self

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering took longer than {self.seconds:g} s (limits.render_seconds)")

    def charge_output(self, size: int) -> None:
        self.output += size
        if self.output > self.max_output:
            raise RenderLimit(f"the template writes more than {self.max_output:,} characters")


def _unbounded() -> Budget:
    return Budget(float("inf"), 1 << 62)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with bounds; `start(budget)` before each render."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.template_class = _CountingTemplate
        self._unbounded = _unbounded()
        self.budget = self._unbounded
        self.globals["range"] = self._range
        self.filters = {name: _bounded_filter(self, function) if name in _SIZING_FILTERS else function
                        for name, function in self.filters.items()}
        self.filters[_ITERATE] = self._iterate
        self.filters[_CONCAT] = self._concat
        self.filters[_CHARGE] = self._charge

    def start(self, budget: Budget) -> None:
        """Charge what renders from now on to `budget` (compiling templates is never charged)."""
        self.budget = budget

    def stop(self) -> None:
        self.budget = self._unbounded
    def render(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        """`template.render(context)` with its output counted as it is written."""
        budget = self.budget
        chunks = template.uncounted_root(template.new_context(context))  # type: ignore[attr-defined]
        pieces: list[str] = []
        try:
            while batch := list(islice(chunks, CHUNKS_PER_COUNT)):  # counted a few chunks at a time, in C
                budget.output += sum(map(len, batch))
                if budget.output > budget.max_output:
                    raise RenderLimit(f"the template writes more than {budget.max_output:,} characters",
                                      *_where_suspended(chunks))
                pieces += batch
        except Exception:
            self.handle_exception()  # raises it again, the traceback rewritten to template lines
        return "".join(pieces)

    # --- the parsed template, rewritten ----------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        rewritten: nodes.Template = _Rewrite().visit(tree)
        return rewritten

    # --- hooks ---------------------------------------------------------------------------

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.check_time()
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            _check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right)
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,  # Jinja's signature
             *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        budget.calls += 1
        if budget.calls > MAX_CALLS:
            raise RenderLimit(f"the template makes more than {MAX_CALLS:,} calls")
        if budget.calls % 16 == 0:
            budget.check_time()
        _check_method(__obj, args)
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH:
                raise RenderLimit(f"calls nest deeper than {MAX_DEPTH} (a macro that calls itself?)")
            return _checked(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        format_string: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_brace_format(format_string, args, kwargs)
            result: str = _checked(wrapper(*args, **kwargs))
            return result

        return bounded

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        _check_size(len(numbers))
        return numbers

    def _iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = self.budget
        for item in iterable:
            budget.iterations += 1
            if budget.iterations % CHECK_EVERY == 0:
                if budget.iterations > MAX_ITERATIONS:
                    raise RenderLimit(f"the template's loops run more than {MAX_ITERATIONS:,} times")
                budget.check_time()
            yield item

    def _concat(self, parts: list[Any]) -> str:
        texts = [str(part) for part in parts]
        _check_size(sum(map(len, texts)))
        return "".join(texts)

    def _charge(self, value: Any) -> Any:
        """Output written into a buffer (a macro's or a `{% set %}` block's), counted like the rest."""
        self.budget.charge_output(len(value) if isinstance(value, str) else len(str(value)))
        return value


class _CountingTemplate(jinja2.Template):
    """A template whose output is counted against the budget as it is written, when it is
    included or imported; `BoundedEnvironment.render` counts a template rendered directly
    itself, without the extra generator (`uncounted_root`)."""

    @classmethod
    def _from_namespace(cls, environment: jinja2.Environment, namespace: Any, globals: Any) -> Any:
        template = super()._from_namespace(environment, namespace, globals)
        root = template.root_render_func
        template.uncounted_root = root  # type: ignore[attr-defined]

        def counted(context: jinja2.runtime.Context) -> Iterator[str]:
            budget = environment.budget  # type: ignore[attr-defined]
            chunks = root(context)
            for chunk in chunks:  # inlined charge_output: this runs for every chunk
                budget.output += len(chunk)
                if budget.output > budget.max_output:
                    raise RenderLimit(f"the template writes more than {budget.max_output:,} characters",
                                      *_where_suspended(chunks))
                yield chunk

        template.root_render_func = counted
        return template


def _where_suspended(generator: Any) -> tuple[str | None, int]:
    """The template file and line a render generator (or the include it delegates to) stands at."""
    while getattr(generator, "gi_yieldfrom", None) is not None:
        generator = generator.gi_yieldfrom
    frame = getattr(generator, "gi_frame", None)
    if frame is None:
        return None, 0
    template = frame.f_globals.get("__jinja_template__")
    if template is None:
        return frame.f_code.co_filename, 0
    return template.filename, template.get_corresponding_lineno(frame.f_lineno)


class _Rewrite(NodeTransformer):
    """Loops through the counter, `~` through a size check, buffered output through the meter."""

    def __init__(self) -> None:
        self.buffered = 0  # inside a macro, call block, filter block, set block or recursive loop

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node.iter = _filter(self.visit(node.iter), _ITERATE)
        return self._body(node, node.recursive)

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._body(node, True)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._body(node, True)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        return self._body(node, True)

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        return self._body(node, True)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(child) for child in node.nodes]
        return _filter(nodes.List(parts, lineno=node.lineno), _CONCAT)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        children = [self.visit(child) for child in node.nodes]
        if self.buffered:
            children = [_filter(nodes.Const(child.data, lineno=child.lineno)
                                if isinstance(child, nodes.TemplateData) else child, _CHARGE)
                        for child in children]
        node.nodes = children
        return node

    def _body(self, node: nodes.Node, buffered: bool) -> nodes.Node:
        self.buffered += buffered
        try:
            self.generic_visit(node)
        finally:
            self.buffered -= buffered
        return node


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _bounded_filter(environment: BoundedEnvironment, function: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter whose size arguments, and result, stay within the bounds."""

    name = function.__name__.removeprefix("do_")

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name in _WIDTH_FILTERS:  # center(width), indent(width), batch(count), …
            for value in (*args[1:], *kwargs.values()):
                if isinstance(value, int) and not isinstance(value, bool):
                    _check_size(abs(value))
        elif name == "replace":
            _check_replace(args, kwargs)
        elif name == "format" and args and isinstance(args[0], str):
            _check_percent_format(args[0], args[1:])
        elif name == "join":
            args = _materialized_join(args)
        return _checked(function(*args, **kwargs))

    return bounded


_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})
# the filters that can make a value much larger than their input; the others are left as they are
_SIZING_FILTERS = _WIDTH_FILTERS | {"replace", "format", "join", "list", "map", "sum", "tojson", "pprint"}


def _materialized_join(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The `join` filter's arguments with its items in a list whose joined size is checked."""
    position = next((i for i, arg in enumerate(args) if not isinstance(arg, jinja2.nodes.EvalContext)), 0)
    if len(args) <= position:
        return args
    items = list(args[position])
    _check_size(len(items))
    separator = args[position + 1] if len(args) > position + 1 and isinstance(args[position + 1], str) else ""
    _check_size(sum(len(str(item)) for item in items) + len(separator) * len(items))
    return (*args[:position], items, *args[position + 1:])


def _check_size(size: int) -> None:
    if size > MAX_VALUE:
        raise RenderLimit(f"the template builds a value of {size:,} characters or items, "
                          f"more than {MAX_VALUE:,}")


def _checked(value: Any) -> Any:
    if isinstance(value, _SIZED):
        _check_size(len(value))
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"the template builds a number of more than {MAX_INT_BITS} bits")
    return value


def _check_repeat(left: Any, right: Any) -> None:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, _SIZED) and isinstance(count, int):
            _check_size(len(sequence) * max(count, 0))
    if isinstance(left, int) and isinstance(right, int) and \
            left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"the template builds a number of more than {MAX_INT_BITS} bits")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and \
            max(base.bit_length(), 1) * exponent > MAX_INT_BITS and abs(base) > 1:
        raise RenderLimit(f"the template builds a number of more than {MAX_INT_BITS} bits")


def _check_method(function: Any, args: tuple[Any, ...]) -> None:
    """Size checks before a str method that could build a huge string in one C call."""
    owner = getattr(function, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(function, "__name__", "")
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        _check_size(args[0])
    elif name == "replace" and len(args) >= 2:
        _check_replace((owner, *args), {})
    elif name == "join" and args and hasattr(args[0], "__len__"):
        items = args[0]
        _check_size(len(items))
        joined = len(items) if isinstance(items, str) else sum(len(str(item)) for item in items)
        _check_size(len(owner) * len(items) + joined)


def _check_replace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) < 3 or not all(isinstance(arg, str) for arg in args[-3:]):
        return
    text, old, new = (str(arg) for arg in args[-3:])
    count = len(text) + 1 if not old else text.count(old)
    _check_size(len(text) + count * max(0, len(new) - len(old)))


def _check_percent_format(template: str, values: Any) -> None:
    numbers = [int(n) for match in _PERCENT_SPEC.finditer(template) for n in match.groups()
               if n and n != "*"]
    if "*" in template:
        numbers += [v for v in (values if isinstance(values, tuple) else (values,)) if isinstance(v, int)]
    for number in numbers:
        _check_size(number)


def _check_brace_format(template: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(template) if spec]
    except ValueError:
        return  # str.format reports the malformed string itself
    for spec in specs:
        for number in re.findall(r"\d+", spec):
            _check_size(int(number))
        if "{" in spec:  # a width taken from the arguments
            for value in (*args, *kwargs.values()):
                if isinstance(value, int):
                    _check_size(value)
