"""Reads an .xlsx with openpyxl, as a Python user would, and prints one JSON
object: sheet names, the first sheet's frozen panes, each column's number
format (on its first data cell with a value), and every row's cells as text (empty for
nothing, true/false, numbers with two decimals, dates as YYYY-MM-DD).

    python openpyxl_rows.py FILE.xlsx

With --all-sheets it prints every sheet instead, read as a big file is read
(read-only, formulas as their cached values, as LibreOffice saves booleans):
{"sheets": [[name, rows], ...]}, each row without its trailing empty cells.

    python openpyxl_rows.py --all-sheets FILE.xlsx
"""

import datetime
import json
import sys

import openpyxl


def text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:.2f}"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def all_sheets(path):
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheets = []
    for sheet in book.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            cells = [text(v) for v in row]
            while cells and cells[-1] == "":
                cells.pop()
            rows.append(cells)
        while rows and not rows[-1]:
            rows.pop()
        sheets.append([sheet.title, rows])
    book.close()
    print(json.dumps({"sheets": sheets}))


def main(path):
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    rows = [[text(c.value) for c in row] for row in sheet.iter_rows()]
    formats = []
    for column in sheet.iter_cols(min_row=2):
        first = next((c for c in column if c.value is not None), None)
        formats.append(first.number_format if first is not None else None)
    print(
        json.dumps(
            {
                "sheets": book.sheetnames,
                "freeze_panes": sheet.freeze_panes,
                "formats": formats,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "--all-sheets":
        all_sheets(sys.argv[2])
    else:
        main(sys.argv[1])
