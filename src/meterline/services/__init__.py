"""Services: one module per resource, holding the rules a request must meet.

A route parses a request and shapes the answer; it calls one function here, in the transaction it
opens. A service checks the resource's rules (references that must exist, combinations that are
refused, states that forbid a change) and calls `store/` to read and write; the store only
queries. Imports `domain/` and `store/` (and from `engine/` only names it defines, such as what
triggered an alert's sweep).
"""
