"""Former home of the file helpers and the model format, kept so that `samformer.io` imports still work.

Atomic writes, JSON and checksums live in `samformer.files` (no torch); the model format in
`samformer.modelfile`.
"""

from samformer.files import atomic_destination, atomic_directory, file_sha256, read_json, write_json
from samformer.modelfile import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, config_sha256, load_model, save_model

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "atomic_destination",
    "atomic_directory",
    "config_sha256",
    "file_sha256",
    "load_model",
    "read_json",
    "save_model",
    "write_json",
]
