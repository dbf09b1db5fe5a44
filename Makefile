# The two commands of the README:  make demo  (the main job on the built-in default)
#                                  make test  (the whole test suite)
# Both install what they need first (idempotent: setup re-runs only when an input changed).
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV
SETUP_INPUTS := requirements/base.txt requirements/build.txt setup.py CMakeLists.txt \
                package.xml $(wildcard msg/*.msg) scripts/setup.sh scripts/build_msgs.sh

.PHONY: setup test demo clean
setup: $(VENV)/.refit-setup-stamp

$(VENV)/.refit-setup-stamp: $(SETUP_INPUTS)
	bash scripts/setup.sh
	touch $@

test: setup
	bash scripts/fetch_demo_video.sh >/dev/null  # real footage for the tests (PyPI, once)
	bash scripts/fetch_dev_set.sh >/dev/null     # the real 3D dev set's videos (PyPI, once)
	bash scripts/run_tests.sh

demo: setup
	bash scripts/demo.sh $(ARGS)

clean:
	rm -rf build out
