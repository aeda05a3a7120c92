#!/usr/bin/env python3
"""Test SMTP sink: real RFC 5321 server (aiosmtpd) that writes each message to OUTDIR/<n>.eml
plus OUTDIR/<n>.json (envelope). Accepts AUTH PLAIN/LOGIN over plain TCP (test only).
Usage: smtp_capture.py HOST PORT OUTDIR [USER PASS]   (stop with SIGTERM/SIGINT)"""
import json, os, signal, sys, itertools
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
creds = (sys.argv[4].encode(), sys.argv[5].encode()) if len(sys.argv) > 5 else None
os.makedirs(outdir, exist_ok=True)
counter = itertools.count(len([f for f in os.listdir(outdir) if f.endswith('.eml')]) + 1)
class Sink:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        tmp = os.path.join(outdir, f'.{n:05d}.tmp')
        with open(tmp, 'wb') as f:
            f.write(envelope.original_content or envelope.content)
        with open(os.path.join(outdir, f'{n:05d}.json'), 'w') as f:
            json.dump({'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos,
                       'auth_user': session.auth_data.decode() if isinstance(session.auth_data, bytes) else None}, f)
        os.rename(tmp, os.path.join(outdir, f'{n:05d}.eml'))
        return '250 OK'
def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    if creds is None or (auth_data.login, auth_data.password) == creds:
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)
ctl = Controller(Sink(), hostname=host, port=port, authenticator=authenticator,
                 auth_require_tls=False, auth_required=creds is not None, decode_data=False,
                 enable_SMTPUTF8=True)
ctl.start()
print(f'smtp sink on {host}:{port} -> {outdir}', flush=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
signal.sigwait({signal.SIGINT, signal.SIGTERM})
ctl.stop()
