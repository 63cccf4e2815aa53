"""Email: digests, confirmation mail and subscriptions by address, sent over SMTP.

One message per address per due run groups every profile that address follows:
multipart/alternative with the plain text first and HTML second, both rendered from
`templates/email/`. Each message carries a visible unsubscribe link per profile and the
RFC 8058 one-click headers, signed per recipient and list (tokens.py).

Delivery keeps the promises of docs/email.md: the ledger (bot.delivery.digests) is written only
after the SMTP server accepted the message, in one transaction with the digest rows, so
a run that dies resumes without sending twice; a recipient or message the server refuses
for good (5xx at RCPT or DATA, or an address it cannot take) pauses that address's
subscriptions; a server that is down or answers 4xx fails the digest and the subscription is
retried on a later run with exponential backoff. A server that fails to answer at all costs
one timeout per run: the rest of the run's addresses fail at once with the same reason. When
the answer to DATA is lost, the server may have taken the message: the resend carries the
same Message-ID, so the receiving side can recognise it.

The package, shaped like slack/: addresses (settings and addresses), smtp (the
transport and its errors), messages (what a reader gets), delivery (the deliverer),
subscriptions (by address, confirm and unsubscribe), tokens (signed links), web (the
link pages).
"""

KIND = "email"
