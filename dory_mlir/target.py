"""Target descriptions: memory sizes and cores of a PULP chip (`../shared/DESIGN.md` §3).

Targets are small JSON files (`dory_mlir/targets/gap8.json` is the default, `gap9.json`
ships too); pass options override single numbers. The budgets the tiler uses are what is
left for data: L1 minus the cluster stacks, L2 minus the code-reserved space.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from dory_mlir.diagnostics import DoryError, PassError
from dory_mlir.dialects.tiling import TargetAttr, target_of
from dory_mlir.tiling.cost_figures import DmaCosts

BUILTIN_TARGETS = Path(__file__).parent / "targets"
DEFAULT_CORES = 8
"""The cores IR lowered without the tile pass's plan runs on (GAP8's cluster, `targets/gap8.json`)."""


@dataclass(frozen=True)
class Target:
    name: str
    cores: int
    l1_total: int
    l1_stacks: tuple[int, ...]
    l2_total: int
    l2_code_reserved: int
    l3_total: int
    double_buffer: bool = True
    dma: DmaCosts = DmaCosts()
    """Bandwidths and setup costs of the DMA paths (the cycle estimate's; optional in the JSON)."""
    l1_budget_override: int | None = None
    l2_budget_override: int | None = None

    @property
    def l1_budget(self) -> int:
        """L1 bytes for tiles (64,000 − 3,500 − 7 × 3,400 = 36,700 on GAP8)."""
        return self.l1_budget_override or self.l1_total - sum(self.l1_stacks)

    @property
    def l2_budget(self) -> int:
        """L2 bytes for activations and weights."""
        return self.l2_budget_override or self.l2_total - self.l2_code_reserved

    def attribute(self) -> TargetAttr:
        """The target as the tile pass records it in the IR, for every later pass and the C printer."""
        return TargetAttr(self.name, self.cores, self.l1_budget, self.l2_budget, self.l3_total, self.double_buffer)

    def with_options(
        self,
        l1_size: int | None = None,
        l2_size: int | None = None,
        cores: int | None = None,
        double_buffer: bool | None = None,
    ) -> Target:
        changes: dict[str, object] = {}
        if l1_size is not None:
            changes["l1_budget_override"] = _positive("l1-size", l1_size)
        if l2_size is not None:
            changes["l2_budget_override"] = _positive("l2-size", l2_size)
        if cores is not None:
            changes["cores"] = _positive("cores", cores)
            if cores > len(self.l1_stacks):
                raise DoryError(f"tile option cores={cores}: the {self.name} cluster has {len(self.l1_stacks)} cores "
                                "(one stack each in the target's l1_stacks)")
        if double_buffer is not None:
            changes["double_buffer"] = double_buffer
        return dataclasses.replace(self, **changes)


def planned_execution(module: ModuleOp, cores: int | None = None, double_buffer: bool | None = None) -> tuple[int, bool]:
    """(cores, double buffering) to lower and run the module with: the target's the tile pass planned for.

    A lowering option must agree with the plan (the L1 footprint the tiler proved depends on both:
    second slots, im2col per core); IR lowered without the tile pass takes the options, else GAP8's
    cluster with double buffering.
    """
    target = target_of(module)
    if target is None:
        return (DEFAULT_CORES if cores is None else cores), (True if double_buffer is None else double_buffer)
    planned_cores, planned_double_buffer = target.cores.data, bool(target.double_buffer.value.data)
    for option, value, planned in (("cores", cores, planned_cores), ("double-buffer", double_buffer, planned_double_buffer)):
        if value is not None and value != planned:
            shown = str(value).lower() if isinstance(value, bool) else value
            was = str(planned).lower() if isinstance(planned, bool) else planned
            raise PassError(f"lowering option {option}={shown} disagrees with the tiling, which the tile pass "
                            f"made for {option}={was} (give tile {option}={shown}, or leave the option out)")
    return planned_cores, planned_double_buffer


def _positive(option: str, value: int) -> int:
    if value <= 0:
        raise DoryError(f"tile option {option} must be positive, got {value}")
    return value


def load_target(name_or_path: str = "gap8") -> Target:
    """A built-in target by name (gap8, gap9) or a JSON file with the same fields."""
    path = BUILTIN_TARGETS / f"{name_or_path}.json"
    if not path.exists():
        path = Path(name_or_path)
    try:
        data = json.loads(path.read_text())
    except OSError:
        known = ", ".join(sorted(p.stem for p in BUILTIN_TARGETS.glob("*.json")))
        raise DoryError(f"no target '{name_or_path}' (built-in: {known}; or a JSON file)") from None
    except ValueError as e:
        raise DoryError(f"not valid JSON: {e}", str(path)) from None
    optional = {"dma"}
    fields = {f.name for f in dataclasses.fields(Target)} - {"double_buffer", "l1_budget_override", "l2_budget_override"}
    missing, unknown = fields - set(data) - optional, set(data) - fields
    if missing or unknown:
        raise DoryError(f"target needs exactly the fields {sorted(fields)} (missing {sorted(missing)}, unknown {sorted(unknown)})", str(path))
    data["l1_stacks"] = tuple(data["l1_stacks"])
    if "dma" in data:
        try:
            data["dma"] = DmaCosts.from_json(data["dma"])
        except (KeyError, TypeError) as e:
            raise DoryError(f"target dma needs l2_l1 and l3_l2 ({{bytes_per_cycle, setup_cycles}}) and "
                            f"tile_overhead_cycles: {e}", str(path)) from None
    target = Target(**data)
    if target.l1_budget <= 0 or target.l2_budget <= 0:
        raise DoryError("the target leaves no L1 or L2 for data", str(path))
    return target
