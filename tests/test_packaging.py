import subprocess
import sys

BLOCK_SKLEARN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("scikit-learn is blocked in this test")
sys.meta_path.insert(0, Block())
import tfclust
for name in tfclust.__all__:
    getattr(tfclust, name)
import tfclust.cli
assert not any(m == "sklearn" or m.startswith("sklearn.") for m in sys.modules)
print("ok")
"""


def test_tfclust_imports_without_scikit_learn():
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_SKLEARN], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_import_is_lazy():
    code = "import sys, tfclust; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False"
