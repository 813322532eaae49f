"""Reads every worksheet of an .xlsx with openpyxl (cached values of
formulas, as a user's script would) and prints one JSON object, the cells
typed, for the differential test of xlport's reader (tests/tests/differential.rs):

    {"sheets": [[name, [[cell, ...], ...]], ...]}

A cell is null, {"s": text}, {"n": number}, {"b": bool}, or {"serial": days}
for a date, datetime or time (openpyxl decides from the number format), as
an Excel serial in the 1900 date system whatever the workbook's epoch.
Text is as openpyxl returns it (it decodes some `_xHHHH_` escapes and not
others; the test allows for that).

    python openpyxl_cells.py FILE.xlsx
"""

import datetime
import json
import sys

import openpyxl
from openpyxl.utils.datetime import CALENDAR_WINDOWS_1900, to_excel


def typed(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, (int, float)):
        return {"n": value}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return {"serial": to_excel(value, CALENDAR_WINDOWS_1900)}
    if isinstance(value, datetime.timedelta):
        return {"serial": value.total_seconds() / 86400}
    return {"s": str(value)}


def main(path):
    book = openpyxl.load_workbook(path, data_only=True)
    sheets = [
        [sheet.title, [[typed(c.value) for c in row] for row in sheet.iter_rows()]]
        for sheet in book.worksheets
    ]
    print(json.dumps({"sheets": sheets}))


if __name__ == "__main__":
    main(sys.argv[1])
