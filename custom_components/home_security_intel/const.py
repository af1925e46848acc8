"""Constants of the Home Security Intelligence integration: domain, option keys, defaults."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "home_security_intel"
MANUFACTURER_FALLBACK: Final = "ONVIF"

# Config entry data keys (credentials live only in the config entry).
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"  # noqa: S105 - a key name, not a secret

DEFAULT_PORT: Final = 80

# Options.
CONF_FRAME_SOURCE: Final = "frame_source"
FRAME_SOURCE_SNAPSHOT: Final = "snapshot"
FRAME_SOURCE_RTSP: Final = "rtsp"
FRAME_SOURCES: Final = (FRAME_SOURCE_SNAPSHOT, FRAME_SOURCE_RTSP)
DEFAULT_FRAME_SOURCE: Final = FRAME_SOURCE_SNAPSHOT
CONF_PROFILES: Final = "profiles"  # list of ONVIF media profile tokens that get a camera entity

# How long one WS-Discovery scan listens for answers, in seconds.
DISCOVERY_TIMEOUT: Final = 4

# runtime
# How often the coordinator checks that a camera still answers, and the ceiling of the doubling
# back-off used while it does not (seconds).
HEALTH_CHECK_INTERVAL_S: Final = 30
MAX_RETRY_DELAY_S: Final = 300

# Config entries are of two kinds: a camera, or a detector that cameras share.
CONF_ENTRY_TYPE: Final = "entry_type"
ENTRY_TYPE_CAMERA: Final = "camera"
ENTRY_TYPE_DETECTOR: Final = "detector"

# Detector entry data.
CONF_DETECTOR_KIND: Final = "kind"
DETECTOR_KIND_SERVER: Final = "server"
DETECTOR_KIND_LOCAL: Final = "local"
CONF_URL: Final = "url"
CONF_API: Final = "api"
API_HSI: Final = "hsi"  # this project's server, POST /v1/detect
API_DEEPSTACK: Final = "deepstack"  # DeepStack / CodeProject.AI, POST /v1/vision/detection
API_RTDETR: Final = "rtdetr"  # the Home Security Intelligence service shape, POST /detect
APIS: Final = (API_HSI, API_DEEPSTACK, API_RTDETR)
CONF_API_KEY: Final = "api_key"
CONF_FINGERPRINT: Final = "fingerprint"
CONF_ENGINE: Final = "engine"
ENGINE_TFLITE: Final = "tflite"
ENGINE_ULTRALYTICS: Final = "ultralytics"
ENGINES: Final = (ENGINE_TFLITE, ENGINE_ULTRALYTICS)
CONF_MODEL: Final = "model"
MODELS_DIR: Final = "home_security_intel/models"  # under Home Assistant's config directory
DEFAULT_SERVER_URL: Final = "http://127.0.0.1:8765"

# Camera detection options.
CONF_DETECTOR: Final = "detector"  # a detector entry's id, or one of these:
DETECTOR_AUTO: Final = "auto"  # the only (or first) detector entry
DETECTOR_NONE: Final = "none"  # no detection for this camera
CONF_DETECTION_ENABLED: Final = "detection_enabled"
CONF_FPS: Final = "fps"
DEFAULT_FPS: Final = 1.0
CONF_GROUPS: Final = "groups"
CONF_MIN_SCORE: Final = "min_score"
DEFAULT_MIN_SCORE: Final = 0.5
CONF_CONFIRM_THRESHOLD: Final = "confirm_threshold"
DEFAULT_CONFIRM_THRESHOLD: Final = 0.7
CONF_MIN_AREA: Final = "min_area"
DEFAULT_MIN_AREA: Final = 0.0
CONF_MAX_AREA: Final = "max_area"
DEFAULT_MAX_AREA: Final = 1.0
CONF_ZONES: Final = "zones"
CONF_MASKS: Final = "masks"
CONF_OFF_DELAY: Final = "off_delay"
DEFAULT_OFF_DELAY_S: Final = 5.0

# Detector health: how often a shared detector is checked while it answers, the back-off ceiling
# while it does not, and how long it must stay away before a repair issue is raised (seconds).
DETECTOR_CHECK_INTERVAL_S: Final = 60
DETECTOR_RETRY_MIN_S: Final = 5
DETECTOR_RETRY_MAX_S: Final = 300
DETECTOR_ISSUE_AFTER_S: Final = 180

# Motion and frame sources (ONVIF events drive the detection rate).
CONF_MOTION_FPS: Final = "motion_fps"  # frames per second while the camera reports motion
DEFAULT_MOTION_FPS: Final = 5.0
# CONF_FPS is the rate without motion for cameras with events (0 = analyse only on motion), and
# the steady rate for cameras without events.
CONF_DETECTION_PROFILE: Final = "detection_profile"  # a media profile token, or:
DETECTION_PROFILE_AUTO: Final = "auto"  # the smallest profile at least the model's input size

# Security layer: events, alerts, AI enrichment, evidence.
ENTRY_TYPE_HOME: Final = "home"  # the single home-wide entry (home alert sensor, calendar)
CONF_ALERT_LEVEL: Final = "alert_level"  # an event at or above this risk level is an alert
DEFAULT_ALERT_LEVEL: Final = "high"
CONF_EVENT_IDLE: Final = "event_idle_time"  # seconds without objects before an event closes
DEFAULT_EVENT_IDLE_S: Final = 30.0
CONF_EVENT_MAX: Final = "event_max_length"  # seconds before a long event is continued by a new one
DEFAULT_EVENT_MAX_S: Final = 90.0
CONF_ALARM_PANEL: Final = "alarm_panel"  # optional alarm_control_panel entity id
CONF_AI_TASK: Final = "ai_task_entity"  # optional ai_task entity id
CONF_AI_MIN_LEVEL: Final = "ai_min_level"
DEFAULT_AI_MIN_LEVEL: Final = "medium"
CONF_AI_GROUPS: Final = "ai_groups"
DEFAULT_AI_GROUPS: Final = ("person", "vehicle")
CONF_AI_MIN_AREA: Final = "ai_min_area"  # minimum box area, fraction of the frame
DEFAULT_AI_MIN_AREA: Final = 0.0
CONF_AI_INTERVAL: Final = "ai_min_interval"  # seconds between two AI calls for one camera
DEFAULT_AI_INTERVAL_S: Final = 60.0
CONF_AI_DAILY_CAP: Final = "ai_daily_cap"  # AI calls per camera per day
DEFAULT_AI_DAILY_CAP: Final = 50
CONF_RETENTION_DAYS: Final = "retention_days"  # days security events and snapshots are kept
DEFAULT_RETENTION_DAYS: Final = 14
STORE_DIR: Final = "home_security_intel"  # under the config directory: events.db
MEDIA_DIR: Final = "home_security_intel"  # under Home Assistant's media directory: snapshots

# Compat (issue 10): the camera's serial number, stored so that several ONVIF devices behind one
# MAC (multi-channel encoders, NVR ports) are told apart.
CONF_SERIAL: Final = "serial_number"

# intel (D): the security layer inside Home Assistant.
HOME_UNIQUE_ID: Final = "home"  # the home entry's unique id (single instance)
SIGNAL_ALERT_CHANGED: Final = f"{DOMAIN}_alert_changed"  # a camera's alert started or ended
SERVICE_ANALYZE_EVENT: Final = "analyze_event"
ATTR_EVENT_ID: Final = "event_id"
