"""lossdoctor: why does my loss look like this, and what exactly do I change?"""

from lossdoctor.diagnose import diagnose
from lossdoctor.errors import LossDoctorError
from lossdoctor.findings import Finding, Fix
from lossdoctor.monitor import Monitor
from lossdoctor.predict import predict
from lossdoctor.report import Report

__all__ = ["Finding", "Fix", "LossDoctorError", "Monitor", "Report", "diagnose", "predict"]
__version__ = "0.1.0"
