"""Reading history back: any topic over a range of offsets or event times, decoded (``tradecore replay``), and the
state of an account as of any past moment, folded from the log (``GET /v1/accounts/{id}/state?as_of=``).

How ranges, ordering, transactions and undecodable records are handled, and why: ``docs/REPLAY.md``.
"""
