#!/usr/bin/env python3
"""Send one OTLP/HTTP protobuf request with a single gauge point whose
timestamp is --age-seconds in the past, built from opentelemetry-proto's
generated stubs (the SDK always stamps "now", so it cannot make an old one).

Used by tests/e2e_prometheus.rs to make a real Prometheus answer 400
("out of bounds") to sluice's prometheusremotewrite exporter.

    send_gauge.py --endpoint http://127.0.0.1:4318 --name old.gauge --value 1 --age-seconds 10800
"""

import argparse
import sys
import time
import urllib.request

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="http://host:port of an OTLP/HTTP receiver")
    p.add_argument("--name", required=True)
    p.add_argument("--value", type=float, default=1.0)
    p.add_argument("--age-seconds", type=float, default=0.0)
    p.add_argument("--service-name", default="sluice-e2e-old")
    args = p.parse_args()

    t = int((time.time() - args.age_seconds) * 1e9)
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=args.service_name))]),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope(name="send_gauge"),
                        metrics=[
                            Metric(
                                name=args.name,
                                gauge=Gauge(data_points=[NumberDataPoint(time_unix_nano=t, as_double=args.value)]),
                            )
                        ],
                    )
                ],
            )
        ]
    )
    http = urllib.request.Request(
        args.endpoint.rstrip("/") + "/v1/metrics",
        data=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with urllib.request.urlopen(http, timeout=10) as resp:
        print(f"HTTP {resp.status}")
        return 0 if 200 <= resp.status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
