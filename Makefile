# Tutor de Algoritmos: JSONL -> LoRA adapter -> merged model -> GGUF -> quantized GGUF -> Ollama.
# `make` lists the targets. Every step writes a real file, so make skips what is done and redoes
# a step when its inputs (data, code, or the variables below) change.

PYTHON ?= .venv/bin/python
BASE_MODEL ?= microsoft/Phi-3.5-mini-instruct
DATA ?= algoritmos_fixed.jsonl
OUT ?= out
OUTTYPE ?= f16
QUANT ?= Q4_K_M
MODEL_NAME ?= tutor-algoritmos
LLAMA_CPP_DIR ?= llama.cpp
# fixtures, benchmarks' models and the download cache (build/downloads, kept by `make clean`)
BUILD ?= build
TRAIN_ARGS ?=
# make train NPROC=N: N processes under accelerate launch (DDP; one per GPU). ACCELERATE_ARGS adds
# launcher flags, e.g. --config_file configs/fsdp.yaml for models too big for one GPU.
NPROC ?= 1
ACCELERATE_ARGS ?=
# llama-cpp-python is compiled for a portable CPU: a -march=native build segfaults on quantized
# GGUFs on some machines. `make deps LLAMA_CMAKE_ARGS=` builds it native (faster, if it works).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
SYSTEM_PYTHON ?= python3
VENV ?= .venv
SMOKE_QUESTION ?= ¿Qué es la búsqueda binaria y cuándo conviene usarla?
# make eval: held-out split of DATA, or every line of EVAL_DATA; EVAL_ARGS for evaluation.py flags
EVAL_DATA ?=
EVAL_ARGS ?=
# make eval JUDGE_URL=http://localhost:11434/v1 JUDGE_MODEL=qwen2.5:7b-instruct: a judge model scores
# every generated answer on the tutoring rubric (any OpenAI-compatible server; verdicts are cached)
JUDGE_URL ?=
JUDGE_MODEL ?=
# make demo: SmolLM2-135M-Instruct (from PyPI, offline) on this CPU; budget measured in README
DEMO_OUT ?= out/demo
DEMO_TRAIN_ARGS ?= --max_steps 130 --gradient_accumulation_steps 1 --eval_strategy no
DEMO_EVAL_ARGS ?= --generate-limit 7 --max-tokens 512
# make bench: --levers also times each speed lever alone (~8 more minutes)
BENCH_ARGS ?=

.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
SHELL := /bin/bash

DEPS_STAMP := $(VENV)/.requirements-installed
# DDP (--multi_gpu: N processes, also on a CPU with gloo) unless a --config_file says otherwise
# (FSDP, DeepSpeed): accelerate refuses both at once
TRAIN_LAUNCHER := $(if $(filter-out 1,$(NPROC)),$(PYTHON) -m accelerate.commands.launch \
	$(if $(findstring --config_file,$(ACCELERATE_ARGS)),,--multi_gpu) --num_processes $(NPROC) $(ACCELERATE_ARGS),$(PYTHON))
CONVERTER := $(LLAMA_CPP_DIR)/convert_hf_to_gguf.py
TINY_MODEL := $(BUILD)/tiny-phi3/config.json
DATA_STAMP := $(OUT)/.data-checked
ADAPTER := $(OUT)/adapter/adapter_model.safetensors
MERGED := $(OUT)/merged/config.json
GGUF := $(OUT)/tutor_algoritmos.gguf
QUANTIZED := $(OUT)/tutor_algoritmos-$(QUANT).gguf
MODELFILE := $(OUT)/Modelfile
BASE_GGUF := $(OUT)/base.gguf
BASE_QUANTIZED := $(OUT)/base-$(QUANT).gguf
REPORT := $(OUT)/report.md
DEMO_BASE := $(DEMO_OUT)/base
PKG := tutor_algoritmos
# The code each step runs: its entry point and every package module it imports (tests/test_make.py
# checks these lists against the imports). errors.py and files.py only word messages and rename
# finished files, so editing them rebuilds nothing.
CHECK_CODE := $(addprefix $(PKG)/,check_data.py answer_checks.py dataset.py hardware.py phi3_tokenizer.py \
	prompts.py recipe.py sandbox.py)
TRAIN_CODE := train_lora.py $(addprefix $(PKG)/,training.py train_config.py answer_loss.py chat_formats.py \
	cpu_fast_path.py dataset.py hardware.py lora_targets.py loss_curve.py prompts.py recipe.py)
MERGE_CODE := convert_lora_to_gguf.py $(PKG)/merge.py
CONVERT_CODE := convert_lora_to_gguf.py $(addprefix $(PKG)/,conversion.py chat_formats.py gguf_tools.py \
	llama_cpp_source.py)
MODELFILE_CODE := $(addprefix $(PKG)/,modelfile.py chat_formats.py gguf_tools.py modelfile_syntax.py prompts.py)
EVAL_CODE := $(addprefix $(PKG)/,evaluation.py answer_checks.py answer_loss.py chat_formats.py dataset.py \
	eval_report.py gguf_tools.py judge.py judge_rubric.py loss_curve.py modelfile.py modelfile_syntax.py \
	prompts.py recipe.py sandbox.py)

# The variables a step depends on are remembered in $(OUT)/.vars/, one file each, so an output
# folder knows how it was built:
# - a variable not set on the command line takes the value its folder remembers, so
#   `make chat OUT=out/demo` chats with the demo as built (its BASE_MODEL, DATA and TRAIN_ARGS);
# - one set to a new value gets its file rewritten, so make redoes exactly the steps that use it.
# Only recipes write those files, never the parsing of this Makefile: `make -n` and `make -q`
# change nothing. (A value must not contain a single quote: the recipe writes it with printf.)
REMEMBERED := BASE_MODEL:base_model DATA:data TRAIN_ARGS:train_args OUTTYPE:outtype EVAL_DATA:eval_data \
	EVAL_ARGS:eval_args
var_file = $(OUT)/.vars/$(1)
# given on this make's command line (or a parent make's): an exported DATA or OUT in the shell is not
explicit = $(filter command line,$(origin $(1)))
same_text = $(and $(findstring x$(1)x,x$(2)x),$(findstring x$(2)x,x$(1)x))
# $(call recall,VARIABLE,file): take the remembered value unless the user gave one
recall = $(if $(or $(call explicit,$(1)),$(if $(wildcard $(call var_file,$(2))),,none)),,\
	$(eval $(1) := $$(file < $(call var_file,$(2)))))
# $(call changed,file,value): non-empty when the folder has no record of value
changed = $(if $(wildcard $(call var_file,$(1))),$(if $(call same_text,$(file < $(call var_file,$(1))),$(2)),,yes),yes)
define remember_rule
$(call var_file,$(2)): $(if $(call changed,$(2),$($(1))),FORCE)
	@mkdir -p $$(@D) && printf '%s' '$$($(1))' > $$@
endef
$(foreach pair,$(REMEMBERED),$(eval $(call recall,$(firstword $(subst :, ,$(pair))),$(lastword $(subst :, ,$(pair))))))
$(foreach pair,$(REMEMBERED),$(eval $(call remember_rule,$(firstword $(subst :, ,$(pair))),$(lastword $(subst :, ,$(pair))))))
VAR_BASE := $(call var_file,base_model)
VAR_DATA := $(call var_file,data)
VAR_TRAIN := $(call var_file,train_args)
VAR_OUTTYPE := $(call var_file,outtype)
VAR_EVAL := $(call var_file,eval_data) $(call var_file,eval_args)
# The data's content, not only its name and date: an older copy put in its place (cp -p, git
# checkout of an old commit, tar x) is checked again. sha256sum reads 1.4 MB in ~5 ms.
DATA_SHA256 := $(firstword $(shell sha256sum '$(DATA)' 2>/dev/null))
VAR_DATA_SHA256 := $(call var_file,data_sha256)
$(VAR_DATA_SHA256): $(if $(call changed,data_sha256,$(DATA_SHA256)),FORCE)
	@mkdir -p $(@D) && printf '%s' '$(DATA_SHA256)' > $@
.PHONY: FORCE
FORCE:

## help: list targets and variables (default)
.PHONY: help
help:
	@echo "Tutor de Algoritmos — make TARGET [VARIABLE=value ...]"
	@echo
	@grep -E '^## ' $(MAKEFILE_LIST) | sed -e 's/^## /  /'
	@echo
	@echo "Variables (current value):"
	@$(foreach v,PYTHON BASE_MODEL DATA OUT BUILD OUTTYPE QUANT MODEL_NAME LLAMA_CPP_DIR TRAIN_ARGS NPROC ACCELERATE_ARGS \
		LLAMA_CMAKE_ARGS BENCH_ARGS \
		EVAL_DATA EVAL_ARGS JUDGE_URL JUDGE_MODEL DEMO_OUT DEMO_TRAIN_ARGS DEMO_EVAL_ARGS,\
		printf '  %-17s %s\n' '$(v)' '$($(v))';)

## deps: create .venv from requirements.txt (redone only when it changes)
.PHONY: deps
deps: $(DEPS_STAMP)
$(DEPS_STAMP): requirements.txt
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# --no-cache-dir: pip caches built wheels by version only, not by CMAKE_ARGS
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip install --quiet --no-cache-dir -r requirements.txt
	touch $@

## llama.cpp: fetch llama.cpp's converter at the pinned commit (git, or the PyPI sdist offline)
.PHONY: llama.cpp
llama.cpp: $(CONVERTER)
$(CONVERTER): | $(DEPS_STAMP)
	$(PYTHON) -m $(PKG).llama_cpp_source $(LLAMA_CPP_DIR)

## tiny-model: build/tiny-phi3/, Phi-3.5 in miniature with its real tokenizer (test fixture)
.PHONY: tiny-model
tiny-model: $(TINY_MODEL)
$(TINY_MODEL): $(PKG)/fixtures/tiny_phi3.py $(PKG)/phi35.py $(PKG)/phi3_tokenizer.py | $(CONVERTER)
	$(PYTHON) -m $(PKG).fixtures.tiny_phi3 --vocab-gguf $(LLAMA_CPP_DIR)/models/ggml-vocab-phi-3.gguf --out $(BUILD)/tiny-phi3

## preflight: can this machine fine-tune BASE_MODEL with TRAIN_ARGS? (data, hub, GPU memory or CPU wait; seconds)
.PHONY: preflight
preflight: | $(DEPS_STAMP)
	$(PYTHON) -m $(PKG).preflight --model_name_or_path $(BASE_MODEL) --data $(DATA) $(TRAIN_ARGS)

## check-data: validate DATA row by row by kind (structure, runnable examples, lengths, duplicates)
.PHONY: check-data
check-data: $(DATA_STAMP)
$(DATA_STAMP): $(DATA) $(CHECK_CODE) $(VAR_BASE) $(VAR_DATA) $(VAR_DATA_SHA256) $(VAR_TRAIN) \
		| $(DEPS_STAMP) $(CONVERTER)
	$(PYTHON) -m $(PKG).check_data $(DATA) --tokenizer $(BASE_MODEL) --train-args '$(TRAIN_ARGS)' \
		--llama-cpp-dir $(LLAMA_CPP_DIR)
	@mkdir -p $(@D) && touch $@

## train: LoRA fine-tune -> OUT/adapter/ (extra flags: TRAIN_ARGS="--max_steps 2")
.PHONY: train
train: $(ADAPTER)
# The data by content (its sha256), checked first (order-only: re-running the check after an edit to
# check_data.py, on the same data, retrains nothing)
$(ADAPTER): $(VAR_DATA) $(VAR_DATA_SHA256) $(TRAIN_CODE) $(VAR_BASE) $(VAR_TRAIN) | $(DATA_STAMP)
	$(TRAIN_LAUNCHER) train_lora.py --model_name_or_path $(BASE_MODEL) --data $(DATA) --output_dir $(OUT)/adapter $(TRAIN_ARGS)

## merge: fold the adapter into the base -> OUT/merged/ (safetensors + tokenizer files)
.PHONY: merge
merge: $(MERGED)
$(MERGED): $(ADAPTER) $(MERGE_CODE)
	$(PYTHON) convert_lora_to_gguf.py merge --base $(BASE_MODEL) --adapter $(OUT)/adapter --out $(OUT)/merged

## gguf: convert with llama.cpp -> OUT/tutor_algoritmos.gguf (OUTTYPE: f32 f16 bf16 q8_0)
.PHONY: gguf
gguf: $(GGUF)
# general.name is the file's own ("tutor-algoritmos", plus "phi-3" for Phi-3: see conversion.py), not
# MODEL_NAME: naming the Ollama model must not reconvert a 7.6 GB GGUF
$(GGUF): $(MERGED) $(CONVERT_CODE) $(VAR_OUTTYPE) | $(CONVERTER)
	$(PYTHON) convert_lora_to_gguf.py convert --merged $(OUT)/merged --outfile $@ --outtype $(OUTTYPE) \
		--llama-cpp-dir $(LLAMA_CPP_DIR)

## quantize: llama.cpp quantizer -> OUT/tutor_algoritmos-QUANT.gguf (Q4_K_M, Q5_K_M, Q8_0, ...)
.PHONY: quantize
quantize: $(QUANTIZED)
$(QUANTIZED): $(GGUF) $(CONVERT_CODE)
	$(PYTHON) convert_lora_to_gguf.py quantize --gguf $(GGUF) --quant $(QUANT) --outfile $@

## modelfile: OUT/Modelfile for Ollama (template and stops from the GGUF's family, tutor SYSTEM)
.PHONY: modelfile
modelfile: $(MODELFILE)
$(MODELFILE): $(GGUF) $(MODELFILE_CODE)
	$(PYTHON) -m $(PKG).modelfile --gguf $(GGUF) --out $@

## ollama: ollama create MODEL_NAME -f OUT/Modelfile, then ask it one question
.PHONY: ollama ollama-check
ollama: ollama-check $(MODELFILE)
	ollama create $(MODEL_NAME) -f $(MODELFILE)
	ollama run $(MODEL_NAME) "$(SMOKE_QUESTION)"

# Checked before anything is built: without Ollama the GGUF is still useful (make chat), but
# `make ollama` would fail only after training and converting.
ollama-check:
	@command -v ollama >/dev/null || { echo "ollama is not installed. Get it from https://ollama.com/download," \
		"then run: ollama create $(MODEL_NAME) -f $(MODELFILE)  (or chat without it: make chat)"; exit 1; }
	@ollama list >/dev/null 2>&1 || { echo "the Ollama server is not running: start it with 'ollama serve'" \
		"(or open the Ollama app), then run make ollama again"; exit 1; }

## eval: base vs tuned on held-out rows, per kind -> OUT/report.md, answers.md (JUDGE_URL adds a judge)
.PHONY: eval
eval: $(REPORT)
$(REPORT): $(MERGED) $(QUANTIZED) $(BASE_QUANTIZED) $(EVAL_CODE) $(EVAL_DATA) $(VAR_EVAL) \
		$(if $(JUDGE_URL),FORCE)
	$(PYTHON) -m $(PKG).evaluation --base $(BASE_MODEL) --tuned $(OUT)/merged --base-gguf $(BASE_QUANTIZED) \
		--tuned-gguf $(QUANTIZED) --adapter $(OUT)/adapter --data $(DATA) --out $(OUT) \
		$(if $(EVAL_DATA),--eval-data $(EVAL_DATA)) $(if $(JUDGE_URL),--judge-url $(JUDGE_URL) \
		--judge-model '$(JUDGE_MODEL)') $(EVAL_ARGS)
$(BASE_GGUF): $(VAR_BASE) $(CONVERT_CODE) $(VAR_OUTTYPE) | $(CONVERTER)
	$(PYTHON) convert_lora_to_gguf.py convert --merged $(BASE_MODEL) --outfile $@ --outtype $(OUTTYPE) \
		--llama-cpp-dir $(LLAMA_CPP_DIR) --model-name tutor-algoritmos-base
$(BASE_QUANTIZED): $(BASE_GGUF) $(CONVERT_CODE)
	$(PYTHON) convert_lora_to_gguf.py quantize --gguf $(BASE_GGUF) --quant $(QUANT) --outfile $@

## chat: talk to OUT/Modelfile's GGUF in the terminal through llama.cpp (no Ollama needed)
.PHONY: chat
chat: $(MODELFILE)
	$(PYTHON) -m $(PKG).chat $(MODELFILE)

## demo: the whole chain on SmolLM2-135M-Instruct on any CPU, offline -> out/demo/ (~16 min on 2 cores)
.PHONY: demo
demo: $(DEMO_BASE)/config.json
	$(MAKE) check-data train merge gguf quantize modelfile eval BASE_MODEL=$(DEMO_BASE) OUT=$(DEMO_OUT) \
		TRAIN_ARGS="$(DEMO_TRAIN_ARGS)" EVAL_ARGS="$(DEMO_EVAL_ARGS)"
	@if command -v ollama >/dev/null && ollama list >/dev/null 2>&1; then \
		ollama create $(MODEL_NAME)-demo -f $(DEMO_OUT)/Modelfile; \
	else echo "Ollama is not available here. With Ollama installed and running:"; \
		echo "  ollama create $(MODEL_NAME)-demo -f $(DEMO_OUT)/Modelfile && ollama run $(MODEL_NAME)-demo"; \
		echo "or chat right now: make chat OUT=$(DEMO_OUT)"; fi
$(DEMO_BASE)/config.json: $(PKG)/demo_base.py | $(DEPS_STAMP)
	$(PYTHON) -m $(PKG).demo_base --out $(DEMO_BASE)

## bench: training and decoding speed on the demo model -> out/bench/results.json, docs/PERFORMANCE.md
.PHONY: bench
bench: $(DEMO_BASE)/config.json
	$(MAKE) $(DEMO_OUT)/base.gguf $(DEMO_OUT)/base-Q4_K_M.gguf BASE_MODEL=$(DEMO_BASE) OUT=$(DEMO_OUT) \
		QUANT=Q4_K_M
	$(PYTHON) -m $(PKG).bench.run --base $(DEMO_BASE) --data $(DATA) --gguf-f16 $(DEMO_OUT)/base.gguf \
		--gguf-q4 $(DEMO_OUT)/base-Q4_K_M.gguf --llama-cpp-dir $(LLAMA_CPP_DIR) --out out/bench \
		--doc docs/PERFORMANCE.md $(BENCH_ARGS)

## gpu-check: the full-size rehearsal to run first on a CUDA machine (minutes, no hub) -> out/gpu-check/
.PHONY: gpu-check
gpu-check: | $(DEPS_STAMP) $(CONVERTER)
	$(PYTHON) -m $(PKG).bench.gpu_check --data $(DATA) --llama-cpp-dir $(LLAMA_CPP_DIR) --out out/gpu-check

## all: preflight, check-data, train, merge, gguf, quantize, modelfile, ollama (needs a CUDA GPU)
.PHONY: all
all: preflight
	@$(MAKE) --no-print-directory ollama-check || echo "(continuing: everything up to $(MODELFILE) is built first)"
	$(MAKE) check-data train merge gguf quantize modelfile
	$(MAKE) ollama

## test: ruff and the test suite (builds what it needs first)
.PHONY: test
test: $(DEPS_STAMP) $(CONVERTER) $(TINY_MODEL)
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest -q tests

## test-fast: the inner loop: ruff and every test not marked slow (well under a minute)
.PHONY: test-fast
test-fast: $(DEPS_STAMP) $(CONVERTER) $(TINY_MODEL)
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest -q -m "not slow" tests

## clean: remove OUT and BUILD (keeps .venv, llama.cpp and the download cache BUILD/downloads)
.PHONY: clean
clean:
	rm -rf $(OUT)
	@if [ -d $(BUILD) ]; then find $(BUILD) -mindepth 1 -maxdepth 1 ! -name downloads -exec rm -rf {} +; fi
