"""Unpacks the shared libraries of the GPU runtime's wheels flat into one folder.

usage: python gpu-runtime.py WHEEL_DIR OUT_DIR

ONNX Runtime's core library becomes libonnxruntime.so (as the CPU one in tools/ort/lib/); its
providers and the NVIDIA libraries keep their names, since they are found by name (safed loads
each by path before ONNX Runtime asks for it by name). A VERSIONS file lists the wheels.
"""

import pathlib
import re
import sys
import zipfile


def main() -> None:
    wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for wheel in sorted(wheels.glob("*.whl")):
        names.append(wheel.name)
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                base = member.rsplit("/", 1)[-1]
                if not re.fullmatch(r"lib[\w.+-]+\.so(\.\d+)*", base):
                    continue
                if base.startswith("libonnxruntime.so"):
                    base = "libonnxruntime.so"
                with z.open(member) as src, open(out / base, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    (out / "VERSIONS").write_text("".join(f"{n}\n" for n in names))


if __name__ == "__main__":
    main()
