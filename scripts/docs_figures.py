"""Copy a run's figures into docs/, downscaled, for the README.

python scripts/docs_figures.py runs/<run> docs/<name> [--width 640]
"""

import argparse
import os

from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a tfclust run folder (with figures/)")
    parser.add_argument("dest", help="where the small PNGs go")
    parser.add_argument("--width", type=int, default=640, help="largest width in pixels")
    args = parser.parse_args()
    os.makedirs(args.dest, exist_ok=True)
    source = os.path.join(args.run, "figures")
    for name in sorted(os.listdir(source)):
        with Image.open(os.path.join(source, name)) as image:
            image = image.convert("RGB")
            if image.width > args.width:
                height = round(image.height * args.width / image.width)
                image = image.resize((args.width, height), Image.LANCZOS)
            image.save(os.path.join(args.dest, name), optimize=True)
        print(os.path.join(args.dest, name))


if __name__ == "__main__":
    main()
