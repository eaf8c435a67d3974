"""The ASGI edge adds its headers without dropping the app's own."""

from __future__ import annotations

from carpool.web.front_door import _content_security_policy, _merged


def test_vary_values_are_joined_and_other_headers_kept() -> None:
    app_headers = [(b"vary", b"Accept-Encoding"), (b"x-content-type-options", b"nosniff")]
    added = [(b"vary", b"Origin"), (b"x-content-type-options", b"nosniff"), (b"x-a", b"1")]
    assert _merged(app_headers, added) == [
        (b"vary", b"Accept-Encoding, Origin"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-a", b"1"),
    ]


def test_the_policy_lists_the_pages_own_inline_scripts_by_hash() -> None:
    page = b"<html><script>alert(1)</script><script src='/x.js'></script></html>"
    policy = _content_security_policy(page)
    # sha256("alert(1)"), base64: a script injected later would have another hash.
    assert "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='" in policy
    assert policy.count("sha256-") == 1
