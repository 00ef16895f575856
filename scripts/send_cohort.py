"""scripts/send_cohort.py: sends the first N rows of a readmission cohort to a vigil server on a Unix socket as
/v1/models/readmission/score requests (batches of 50), then the outcomes of all of them."""
import csv, http.client, json, socket, sys

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("vigil")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

sock, cohort, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = list(csv.DictReader(open(cohort)))[:n]
skip = {"label", "reference_risk"}
c = UnixHTTP(sock)
ids, labels = [], []
for i in range(0, len(rows), 50):
    batch = []
    for r in rows[i:i + 50]:
        rec = {k: (v if k in ("race", "gender", "encounter_id") else float(v)) for k, v in r.items() if k not in skip}
        batch.append(rec)
        labels.append(int(r["label"]))
    c.request("POST", "/v1/models/readmission/score", json.dumps(batch), {"Content-Type": "application/json"})
    resp = c.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 200, body
    ids += [b["prediction_id"] for b in body]
outcomes = [{"prediction_id": p, "label": l} for p, l in zip(ids, labels)]
for i in range(0, len(outcomes), 500):
    c.request("POST", "/v1/models/readmission/outcomes", json.dumps(outcomes[i:i + 500]), {"Content-Type": "application/json"})
    resp = c.getresponse()
    resp.read()
    assert resp.status == 200
print(f"{len(ids)} predictions, {sum(labels)} positive outcomes")
