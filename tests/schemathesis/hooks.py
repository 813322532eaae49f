"""Schemathesis hooks for xlport's API fuzzing (scripts/test).

Request bodies that are not UTF-8 are left out: the local stack's function URL
emulator (`cargo lambda watch`) answers a JSON request whose body is not valid
UTF-8 with a 500 of its own, before the API function runs (nothing reaches the
function's log). On AWS, a Function URL hands such a body to the function
base64-encoded, and the API answers it with a 400 like any other malformed
JSON; the in-process route tests (functions/api/tests/routes.rs) cover that.
"""

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    if isinstance(body, (bytes, bytearray)):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
