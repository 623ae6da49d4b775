"""`tradecore alerts`: webhooks for fills, risk rejections, the kill switch, dead letters and projection lag.

One package per concept, as elsewhere: the rules file (``rules``), the min-interval between alerts of one rule
(``throttle``), what an alert says (``alert``), how it is signed (``signing``), how it is delivered with retries
(``delivery``), and the service that reads the namespace's topics and commits its position only after a receiver
took the alert (``service``).
"""
