# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for ansible-test's get-pip bootstrap script, so `make lint-sanity` works offline.

ansible-test bootstraps pip in every virtual environment it creates by running a get-pip.py it
downloads from ci-files.testing.ansible.com, a host this machine (and many CI runners) cannot
reach; it then stops with "does not have pip available". `make lint-sanity` copies this file to
the cache path ansible-test looks at first (~/.ansible/test/cache/get_pip_<version>.py). It is
run with get-pip's arguments (`pip==<version>` plus options): the interpreter's bundled pip
(ensurepip) installs the requested pip from the package index pip is configured to use.
"""

import os
import subprocess
import sys

# get-pip.py's own flags; pip install does not know them.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main():
    env = dict(os.environ)
    # A PIP_CONFIG_FILE pointing elsewhere (CI images often set /dev/null) would hide the
    # machine's index configuration, the only place the requested pip can come from.
    env.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, env=env)
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True, env=env)


if __name__ == "__main__":
    main()
