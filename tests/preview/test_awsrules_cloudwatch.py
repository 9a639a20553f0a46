"""CloudWatch rules of the mock runtime."""
import pytest

from scripts.preview.awsrules import AwsRuleError, Resource, check_resource
from scripts.preview.awsrules.cloudwatch import ALARM


def alarm(**inputs) -> Resource:
    return Resource(type=ALARM, name="a", urn="urn:a", inputs={"period": 60, "evaluationPeriods": 3} | inputs)


def test_alarm_periods_and_m_out_of_n():
    check_resource(alarm(datapointsToAlarm=2))
    check_resource(alarm(period=3600))
    with pytest.raises(AwsRuleError, match="period 45 s"):
        check_resource(alarm(period=45))
    with pytest.raises(AwsRuleError, match="datapointsToAlarm 4 exceeds"):
        check_resource(alarm(datapointsToAlarm=4))
