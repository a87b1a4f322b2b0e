"""The official Python Elasticsearch client (8.x) against Dozor's /insert/elasticsearch.

Usage: es_bulk.py BASE_URL TOKEN. Prints one JSON line: what info() and helpers.bulk
answered. A malformed document is in the batch on purpose: it must fail alone.
"""
import json
import sys

from elasticsearch import Elasticsearch, helpers

base, token = sys.argv[1], sys.argv[2]
es = Elasticsearch(base, bearer_auth=token, request_timeout=10)
info = es.info()
docs = [
    {"_index": "shop-logs", "_source": {"@timestamp": "2026-12-01T10:00:00Z", "message": f"order {i} paid by anna@mail.ru", "service": "shop", "level": "info", "order": i}}
    for i in range(50)
]
docs.insert(10, {"_index": "shop-logs", "_source": {"@timestamp": "not a time", "message": "broken"}})
ok, errors = helpers.bulk(es, docs, raise_on_error=False, chunk_size=20)
print(json.dumps({
    "version": info["version"]["number"],
    "ok": ok,
    "errors": [e.get("index", e.get("create", {})).get("error", {}).get("type") for e in errors],
}))
