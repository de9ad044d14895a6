"""Dashboard support (imports Streamlit in ``data``, ``sidebar`` and ``layout`` only).

``state`` declares every setting and session-state key; ``share`` turns settings into URL query parameters and
back (pure functions); ``paths`` guards the data root; ``registry`` lists the pages; ``store`` holds the
in-process caches and background jobs; ``data`` wraps the library with those caches; ``figures`` and ``tables``
build what the pages show. Pages in ``views/`` stay thin: UI only. A page may add its own query parameters: the
sidebar rewrites only its own (``share.OURS``) and keeps the others.
"""
