"""A real SMTP server for the e-mail receiver's test: aiosmtpd on 127.0.0.1:<port>; each
message is parsed with Python's email package and appended to <out> as one JSON line:
envelope sender and recipients, headers, and every MIME leaf (type, filename, text).
The first <fail> messages are refused with a 451, to prove Dozor retries.

usage: smtp_sink.py PORT OUT FAIL"""

import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, fail):
        self.out = out
        self.fail = fail

    async def handle_DATA(self, server, session, envelope):
        if self.fail > 0:
            self.fail -= 1
            return "451 try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({
                "type": part.get_content_type(),
                "filename": part.get_filename(),
                "text": part.get_content() if part.get_content_maintype() == "text"
                else part.get_payload(decode=True).decode("utf-8"),
            })
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "helo": session.host_name,
            "subject": msg["Subject"],
            "from": msg["From"],
            "to": msg["To"],
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    port, out, fail = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    controller = Controller(Sink(out, fail), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
