"""Does the model fit a board? Flash: model + runtime code. RAM: arena + runtime RAM.

The runtime figures come from the board file (runtime_flash_bytes, runtime_ram_bytes).
On boards whose linker script copies code and constants into RAM at boot (Teensy 4.x:
.text in ITCM, .rodata in DTCM, both in the 512 KB FlexRAM; board file
code_and_constants_in_ram = true) the model and the runtime code count against RAM too.
When a board file leaves them out, tinyopt uses defaults measured on the emulated
Cortex-M4 (TFLM's interpreter and reference kernels took 66–73 kB of flash besides the
model) and a conservative RAM allowance for stack, the interpreter
object and the harness buffers."""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.boards import Board
from tinyopt.units import kb

DEFAULT_RUNTIME_FLASH = 72 * 1024
DEFAULT_RUNTIME_RAM = 16 * 1024
TIGHT = 0.90     # above this share of a budget the verdict warns


@dataclass(frozen=True)
class Fit:
    board: str
    flash_used: int
    flash_budget: int
    ram_used: int
    ram_budget: int
    flash_parts: dict       # what flash_used is made of
    ram_parts: dict
    fits_flash: bool
    fits_ram: bool
    verdict: str
    suggestions: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram

    def to_json(self) -> dict:
        return {"board": self.board, "fits": self.fits, "verdict": self.verdict,
                "flash": {"used": self.flash_used, "budget": self.flash_budget,
                          "fits": self.fits_flash, "parts": self.flash_parts},
                "ram": {"used": self.ram_used, "budget": self.ram_budget,
                        "fits": self.fits_ram, "parts": self.ram_parts},
                "suggestions": list(self.suggestions)}




def _budget_line(what: str, used: int, budget: int) -> str:
    return f"{what} {kb(used)} of {kb(budget)} ({100 * used / budget:.0f} %)"


def board_needs(model_bytes: int, arena_bytes: int, board: Board) -> tuple[dict, dict]:
    flash = {"model": model_bytes,
             "runtime": board.runtime_flash_bytes or DEFAULT_RUNTIME_FLASH,
             "runtime_source": "board file" if board.runtime_flash_bytes else "tinyopt default"}
    ram = {"arena": arena_bytes,
           "runtime": board.runtime_ram_bytes or DEFAULT_RUNTIME_RAM,
           "runtime_source": "board file" if board.runtime_ram_bytes else "tinyopt default"}
    if board.code_and_constants_in_ram:
        ram["model"] = flash["model"]      # constants (.rodata) copied into RAM
        ram["code"] = flash["runtime"]     # code (.text) copied into RAM
    return flash, ram


def ram_total(ram: dict) -> int:
    return ram["arena"] + ram["runtime"] + ram.get("model", 0) + ram.get("code", 0)


def fits_board(model_bytes: int, arena_bytes: int, board: Board) -> bool:
    flash, ram = board_needs(model_bytes, arena_bytes, board)
    return (flash["model"] + flash["runtime"] <= board.flash_bytes and
            ram_total(ram) <= board.ram_bytes)


def check_fit(board: Board, *, model_bytes: int, weight_bytes: int, arena_bytes: int,
              arena_measured: bool, heaviest_activation: tuple[str, int] | None,
              other_boards: list[Board] = ()) -> Fit:
    flash, ram = board_needs(model_bytes, arena_bytes, board)
    ram["arena_source"] = "firmware arena" if arena_measured else "lower bound (arena not measured)"
    flash_used = flash["model"] + flash["runtime"]
    ram_used = ram_total(ram)
    fits_flash = flash_used <= board.flash_bytes
    fits_ram = ram_used <= board.ram_bytes
    parts = [_budget_line("flash", flash_used, board.flash_bytes),
             _budget_line("RAM", ram_used, board.ram_bytes)]
    if fits_flash and fits_ram:
        tight = (flash_used > TIGHT * board.flash_bytes or ram_used > TIGHT * board.ram_bytes)
        verdict = f"fits on {board.name}" + (" (tight)" if tight else "") + ": " + ", ".join(parts)
    else:
        short = []
        if not fits_flash:
            short.append(f"flash needs {kb(flash_used)} > {kb(board.flash_bytes)}")
        if not fits_ram:
            short.append(f"RAM needs {kb(ram_used)} > {kb(board.ram_bytes)}"
                         + (" (the model and code run from RAM on this board)"
                            if board.code_and_constants_in_ram else ""))
        verdict = f"does not fit on {board.name}: " + ", ".join(short)
    suggestions = []
    if not fits_flash:
        suggestions.append(
            f"weights take {kb(weight_bytes)}: prune or cluster more (`tinyopt optimize "
            "--prune 0.8`) and deploy with a backend that stores only the non-zero weights "
            "(sparse encoding); zeros in a dense int8 tensor cost the same flash")
        suggestions.append("shrink the model: fewer units/filters in the largest layers")
    if not fits_ram and board.code_and_constants_in_ram and ram["model"] > ram["arena"]:
        suggestions.append(f"the weights ({kb(weight_bytes)}) are copied into RAM at boot on "
                           f"{board.name}: prune or cluster, or shrink the largest layers")
    elif not fits_ram:
        if heaviest_activation:
            layer, size = heaviest_activation
            suggestions.append(f"the largest activation ({layer}, {kb(size)}) sets the arena: "
                               "use a smaller input or fewer channels there")
        else:
            suggestions.append("use a smaller input or fewer channels in the early layers")
    if not (fits_flash and fits_ram):
        roomy = [b.name for b in other_boards
                 if b.name != board.name and fits_board(model_bytes, arena_bytes, b)]
        if roomy:
            suggestions.append(f"boards it fits: {', '.join(roomy)}")
        else:
            suggestions.append("pick a board with more flash/RAM")
    return Fit(board.name, flash_used, board.flash_bytes, ram_used, board.ram_bytes,
               flash, ram, fits_flash, fits_ram, verdict, tuple(suggestions))
