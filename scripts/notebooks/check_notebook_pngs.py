"""Checks that executed notebooks show their figures: every figure-making code cell (tagged "figure"
by scripts/notebooks/make_notebooks.py, or calling plt.subplots/plt.figure/plt.show) holds at least one
image/png output, and every notebook holds at least one. Prints the PNG count per notebook; exits 1
with one line per failure otherwise.
    python scripts/notebooks/check_notebook_pngs.py EXECUTED.ipynb...
"""
import re, sys

import nbformat

FIGURE_CALL = re.compile(r"\bplt\.(subplots?|figure|show)\(")


def is_figure_cell(cell):
    return cell.cell_type == "code" and ("figure" in cell.metadata.get("tags", [])
                                         or FIGURE_CALL.search(cell.source) is not None)


def pngs(cell):
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def main(paths):
    if not paths:
        sys.exit("check_notebook_pngs: no executed notebooks given")
    failures = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        figure_cells = [(i, c) for i, c in code if is_figure_cell(c)]
        total = sum(pngs(c) for _, c in code)
        print(f"{path}: {total} PNG output(s); figure cells {len(figure_cells)}: "
              + ", ".join(f"cell {i}={pngs(c)}" for i, c in figure_cells))
        for i, c in figure_cells:
            if pngs(c) == 0:
                failures.append(f"{path}: cell {i} ({c.get('id', '?')}) makes a figure but its outputs hold no "
                                "image/png (forced non-inline backend, e.g. matplotlib.use(\"Agg\"), or no plt.show()?)")
        if total == 0:
            failures.append(f"{path}: no image/png output in any cell; its figures are not shown inline")
    if failures:
        print("FAIL: notebooks without inline figures:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {len(paths)} notebook(s), every figure cell shows a PNG")


if __name__ == "__main__":
    main(sys.argv[1:])
