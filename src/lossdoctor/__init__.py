"""lossdoctor: why does my loss look like this, and what exactly do I change?"""

__version__ = "0.1.0"

from lossdoctor.causes import Cause  # noqa: E402
from lossdoctor.diagnose import diagnose  # noqa: E402
from lossdoctor.errors import LossDoctorError  # noqa: E402
from lossdoctor.findings import Finding, Fix, Verification  # noqa: E402
from lossdoctor.fix import FixResult, fix  # noqa: E402
from lossdoctor.monitor import Monitor  # noqa: E402
from lossdoctor.predict import predict  # noqa: E402
from lossdoctor.report import Report  # noqa: E402
from lossdoctor.theory.propagate import Prediction  # noqa: E402
from lossdoctor.thresholds import Thresholds  # noqa: E402
from lossdoctor.trace import Trace  # noqa: E402

__all__ = ["Cause", "Finding", "Fix", "FixResult", "LossDoctorError", "Monitor", "Prediction",
           "Report", "Thresholds", "Trace", "Verification", "__version__", "diagnose", "fix",
           "predict"]
