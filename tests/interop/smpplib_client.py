"""Drives icaze with python smpplib, an SMPP client no one here wrote.

Binds as a transceiver, submits one citizen's text, waits for the whole reply (every
deliver_sm part, which smpplib acknowledges), unbinds, and prints one JSON object.
With CAFILE it speaks TLS (python's ssl module), trusting only that CA and checking that the
server's certificate names `localhost`.
Usage: smpplib_client.py HOST PORT TEXT [CAFILE]
"""
import json
import ssl
import sys

import smpplib.client
import smpplib.consts

host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
result = {"submit_status": None, "message_id": None, "parts": [], "unbound": False}


class Localhost:
    """smpplib wraps its socket without a server name; this gives it one to check."""

    def __init__(self, context):
        self.context = context

    def wrap_socket(self, sock):
        return self.context.wrap_socket(sock, server_hostname="localhost")


tls = None
if len(sys.argv) > 4:
    tls = Localhost(ssl.create_default_context(cafile=sys.argv[4]))
client = smpplib.client.Client(host, port, timeout=10, allow_unknown_opt_params=True,
                               ssl_context=tls)


def sent(pdu, **kwargs):
    result["submit_status"] = pdu.status
    mid = pdu.message_id
    result["message_id"] = mid.decode() if isinstance(mid, bytes) else mid


def received(pdu, **kwargs):
    data = pdu.short_message or b""
    total, seq = 1, 1
    if pdu.esm_class & 0x40:
        udhl = data[0]
        header, data = data[1:1 + udhl], data[1 + udhl:]
        if len(header) >= 5 and header[0] == 0x00:
            total, seq = header[3], header[4]
    if pdu.data_coding == 8:
        piece = data.decode("utf-16-be")
    else:
        piece = data.decode("ascii", "replace")
    result["parts"].append({"seq": seq, "total": total, "text": piece,
                            "source": pdu.source_addr.decode(),
                            "destination": pdu.destination_addr.decode(),
                            "esm_class": pdu.esm_class, "data_coding": pdu.data_coding})
    return smpplib.consts.SMPP_ESME_ROK


client.set_message_sent_handler(sent)
client.set_message_received_handler(received)
client.connect()
if tls is not None:
    result["tls"] = client._socket.version()
client.bind_transceiver(system_id="demo", password="demo")
client.send_message(
    source_addr_ton=smpplib.consts.SMPP_TON_INTL,
    source_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
    source_addr="994501234567",
    dest_addr_ton=smpplib.consts.SMPP_TON_UNK,
    dest_addr_npi=smpplib.consts.SMPP_NPI_UNK,
    destination_addr="8103",
    short_message=text.encode("ascii"),
    data_coding=0,
    esm_class=0,
)
while True:
    client.read_once()
    parts = result["parts"]
    if result["submit_status"] is not None and parts and len(parts) >= parts[0]["total"]:
        break
client.unbind()
result["unbound"] = True
client.disconnect()
parts = sorted(result["parts"], key=lambda p: p["seq"])
result["reply"] = "".join(p["text"] for p in parts)
print(json.dumps(result))
