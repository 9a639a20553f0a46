"""CloudWatch rules the mock runtime enforces; each cites where AWS states it."""
from __future__ import annotations

from typing import Iterable

from scripts.preview.awsrules import Resource, resource_rule

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PUT_METRIC_ALARM = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"


@resource_rule("cloudwatch-alarm-periods", ALARM, cite=f"{PUT_METRIC_ALARM} (Period: 10, 20, 30 or a multiple of "
               "60; DatapointsToAlarm: the M of an M-out-of-N alarm, at most EvaluationPeriods)")
def alarm_periods(r: Resource) -> Iterable[str]:
    period, evaluations, datapoints = (r.inputs.get(k) for k in ("period", "evaluationPeriods", "datapointsToAlarm"))
    if period is not None and period not in (10, 20, 30) and period % 60:
        yield f"period {period} s: use 10, 20, 30 or a multiple of 60"
    if datapoints is not None and evaluations is not None and datapoints > evaluations:
        yield f"datapointsToAlarm {datapoints} exceeds evaluationPeriods {evaluations}"
