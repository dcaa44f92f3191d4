"""The `tiling` dialect: the target, the tile pass's decisions and its L2 plan as typed attributes.

The tile pass writes them once; every later pass and the C printer reads them (DESIGN §3, §8):

- `#tiling.target<...>` on the module (key `tiling.target`): the chip's name, cores, the L1/L2 bytes for
  data, the L3 size and whether L1 buffers are double-buffered;
- `#tiling.layer<...>` on every `qnn.layer` (key `tiling`, carried by `pulp.layer` as its `tiling` property):
  the L1 tile, its grid, the bytes the tiler proved, the L2 slice, where the weights live,
  the activations streamed from L3 and the loop order of the tiles;
- `#tiling.l2_plan<...>` on the network function (key `l2_plan`): the peak, where the weights live
  and every `#tiling.l2_buffer<...>` with its offset and lifetime.

Their text is `key = value` pairs in a fixed order (integers, strings, `true`/`false`, lists), inside
`<...>`: upstream mlir-opt keeps such an unregistered attribute verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import ArrayAttr, BoolAttr, IntAttr, IntegerAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from dory_mlir.tiling.geometry import LoopOrder

TARGET = "tiling.target"
"""The module attribute holding the `#tiling.target` (MLIR wants a module's attributes named by dialect)."""
TILING = "tiling"
"""The `qnn.layer` attribute (and `pulp.layer` param) holding the layer's `#tiling.layer`."""
L2_PLAN = "l2_plan"
"""The network function's attribute holding the `#tiling.l2_plan`."""

WEIGHT_PLACES = ("L2", "L3", "L3-stream", "none")
"""Where a layer's constants live: resident in L2, copied whole from L3 per layer, streamed from L3 in
slices of output channels, or the layer has none."""


def _value(value: int | bool | str | Sequence) -> Attribute:
    if isinstance(value, bool):
        return IntegerAttr.from_bool(value)
    if isinstance(value, int):
        return IntAttr(value)
    if isinstance(value, str):
        return StringAttr(value)
    return ArrayAttr([v if isinstance(v, Attribute) else _value(v) for v in value])


class KeywordAttr(ParametrizedAttribute):
    """An attribute written `<key = value, ...>` with its parameters in declaration order."""

    @classmethod
    def keys(cls) -> list[str]:
        return [name for name, _ in cls.get_irdl_definition().parameters]

    def replace(self, **changes: int | bool | str | Sequence) -> KeywordAttr:
        """A copy with some parameters changed (given as plain values or attributes), verified again."""
        params = dict(zip(self.keys(), self.parameters, strict=True))
        for key, value in changes.items():
            if key not in params:
                raise KeyError(f"{self.name} has no parameter '{key}'")
            params[key] = value if isinstance(value, Attribute) else _value(value)
        return type(self).new(list(params.values()))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        values = []
        with parser.in_angle_brackets():
            for i, key in enumerate(cls.keys()):
                if i:
                    parser.parse_punctuation(",")
                parser.parse_keyword(key)
                parser.parse_punctuation("=")
                values.append(cls._parse_value(parser))
        return values

    @classmethod
    def _parse_value(cls, parser: AttrParser) -> Attribute:
        if (flag := parser.parse_optional_boolean()) is not None:
            return IntegerAttr.from_bool(flag)
        if (text := parser.parse_optional_str_literal()) is not None:
            return StringAttr(text)
        if (number := parser.parse_optional_integer(allow_boolean=False)) is not None:
            return IntAttr(number)
        if parser.parse_optional_punctuation("[") is not None:
            if parser.parse_optional_punctuation("]") is not None:
                return ArrayAttr([])
            items = [cls._parse_value(parser)]
            while parser.parse_optional_punctuation(",") is not None:
                items.append(cls._parse_value(parser))
            parser.parse_punctuation("]")
            return ArrayAttr(items)
        return parser.parse_attribute()

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_list(zip(self.keys(), self.parameters, strict=True),
                               lambda item: self._print_item(printer, *item))

    def _print_item(self, printer: Printer, key: str, value: Attribute) -> None:
        printer.print_string(f"{key} = ")
        self._print_value(printer, value)

    def _print_value(self, printer: Printer, value: Attribute) -> None:
        if isinstance(value, IntegerAttr):
            printer.print_string("true" if value.value.data else "false")
        elif isinstance(value, IntAttr):
            printer.print_int(value.data)
        elif isinstance(value, StringAttr):
            printer.print_string_literal(value.data)
        elif isinstance(value, ArrayAttr):
            with printer.in_square_brackets():
                printer.print_list(value.data, lambda item: self._print_value(printer, item))
        else:
            printer.print_attribute(value)


def _positive(attr: Attribute, what: str) -> None:
    values = attr.data if isinstance(attr, ArrayAttr) else (attr,)
    if not all(isinstance(v, IntAttr) and v.data > 0 for v in values):
        raise VerifyException(f"{what} must be positive")


def _ints(attr: ArrayAttr[IntAttr]) -> tuple[int, ...]:
    return tuple(v.data for v in attr.data)


@irdl_attr_definition
class TargetAttr(KeywordAttr):
    """The chip the network is compiled for, as the tile pass planned it (`dory_mlir/target.py`)."""

    name = "tiling.target"

    chip: StringAttr
    cores: IntAttr
    l1_budget: IntAttr
    """L1 bytes for data (the L1 arena): L1 minus the cluster stacks, or the tile pass's `l1-size`."""
    l2_budget: IntAttr
    """L2 bytes for activations and weights: L2 minus the code, or `l2-size`."""
    l3_size: IntAttr
    double_buffer: BoolAttr

    def __init__(self, chip: str, cores: int, l1_budget: int, l2_budget: int, l3_size: int, double_buffer: bool):
        super().__init__(*(_value(v) for v in (chip, cores, l1_budget, l2_budget, l3_size, double_buffer)))

    def verify(self) -> None:
        for key in ("cores", "l1_budget", "l2_budget", "l3_size"):
            _positive(getattr(self, key), key)


@irdl_attr_definition
class LayerTilingAttr(KeywordAttr):
    """A layer's tiling: the L1 tile (co, ho, wo, ci) and its grid (tiles per dimension), the L1 bytes
    the tiler proved for it, the L2 slice (co2, ho2), where the weights live, the activations the layer
    streams from L3, the loop order of its tiles (`geometry.LoopOrder`: "input-stationary" or
    "weight-stationary") and the L1 slots of the order's stationary buffer (the input, or the weights:
    1 when it is kept in one slot although it changes, its copies waited for; else 2)."""

    name = "tiling.layer"

    l1_tile: ArrayAttr[IntAttr]
    l1_tiles: ArrayAttr[IntAttr]
    l1_bytes: IntAttr
    l2_tile: ArrayAttr[IntAttr]
    weights: StringAttr
    streamed: ArrayAttr[StringAttr]
    loop_order: StringAttr
    stationary_slots: IntAttr

    def __init__(self, l1_tile: Sequence[int], l1_tiles: Sequence[int], l1_bytes: int, l2_tile: Sequence[int],
                 weights: str, streamed: Sequence[str], loop_order: LoopOrder, stationary_slots: int):
        super().__init__(*(_value(v) for v in (l1_tile, l1_tiles, l1_bytes, l2_tile, weights, streamed,
                                               LoopOrder(loop_order).value, stationary_slots)))

    def verify(self) -> None:
        for key, length in (("l1_tile", 4), ("l1_tiles", 4), ("l2_tile", 2)):
            if len(getattr(self, key).data) != length:
                raise VerifyException(f"{key} needs {length} sizes")
            _positive(getattr(self, key), key)
        if self.l1_bytes.data < 0:
            raise VerifyException("l1_bytes must not be negative")
        if self.weights.data not in WEIGHT_PLACES:
            raise VerifyException(f"weights must be one of {', '.join(WEIGHT_PLACES)}")
        if self.loop_order.data not in {o.value for o in LoopOrder}:
            raise VerifyException(f"loop_order must be one of {', '.join(o.value for o in LoopOrder)}")
        if self.stationary_slots.data not in (1, 2):
            raise VerifyException("stationary_slots must be 1 or 2")

    @property
    def tile(self) -> tuple[int, int, int, int]:
        """The interior L1 tile: output channels, rows, columns, input channels."""
        return _ints(self.l1_tile)  # type: ignore[return-value]

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return _ints(self.l1_tiles)  # type: ignore[return-value]

    @property
    def slice(self) -> tuple[int, int]:
        """The L2 slice: output channels, output rows."""
        return _ints(self.l2_tile)  # type: ignore[return-value]

    @property
    def streamed_names(self) -> tuple[str, ...]:
        return tuple(s.data for s in self.streamed.data)

    @property
    def order(self) -> LoopOrder:
        return LoopOrder(self.loop_order.data)

    @property
    def single(self) -> str | None:
        """The buffer kept in one L1 slot although it changes (None: every changing buffer has two)."""
        return self.order.stationary if self.stationary_slots.data == 1 else None


@irdl_attr_definition
class L2BufferAttr(KeywordAttr):
    """One L2 buffer: bytes [offset, offset + bytes) of the arena, alive from layer `first` to `last`."""

    name = "tiling.l2_buffer"

    buffer: StringAttr
    offset: IntAttr
    bytes: IntAttr
    first: IntAttr
    last: IntAttr

    def __init__(self, buffer: str, offset: int, bytes: int, first: int, last: int):  # noqa: A002
        super().__init__(*(_value(v) for v in (buffer, offset, bytes, first, last)))

    def verify(self) -> None:
        if self.offset.data < 0 or self.bytes.data < 0:
            raise VerifyException(f"L2 buffer '{self.buffer.data}': offset and bytes must not be negative")
        if not 0 <= self.first.data <= self.last.data:
            raise VerifyException(f"L2 buffer '{self.buffer.data}': alive from layer {self.first.data} "
                                  f"to {self.last.data}, which is no lifetime")


@irdl_attr_definition
class L2PlanAttr(KeywordAttr):
    """The network's L2 plan: the highest byte used, where the weights live (L2: resident; L3: copied
    per layer) and every buffer (the budget is the target's)."""

    name = "tiling.l2_plan"

    peak: IntAttr
    weights: StringAttr
    buffers: ArrayAttr[L2BufferAttr]

    def __init__(self, peak: int, weights: str, buffers: Sequence[L2BufferAttr]):
        super().__init__(IntAttr(peak), StringAttr(weights), ArrayAttr(buffers))

    def verify(self) -> None:
        if self.weights.data not in ("L2", "L3"):
            raise VerifyException("weights must be L2 or L3")
        for b in self.buffers.data:
            if b.offset.data + b.bytes.data > self.peak.data:
                raise VerifyException(f"L2 buffer '{b.buffer.data}' ends at byte {b.offset.data + b.bytes.data}, "
                                      f"past the plan's peak {self.peak.data}")

    def by_name(self) -> dict[str, L2BufferAttr]:
        return {b.buffer.data: b for b in self.buffers.data}


def target_of(module: ModuleOp) -> TargetAttr | None:
    """The target the tile pass planned the module for; None before the tile pass."""
    target = module.attributes.get(TARGET)
    return target if isinstance(target, TargetAttr) else None


TILING_DIALECT = Dialect("tiling", [], [TargetAttr, LayerTilingAttr, L2BufferAttr, L2PlanAttr])
