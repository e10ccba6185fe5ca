"""What a Lantern model folder holds: the file names every writer and reader agree on.

A model folder is a Hugging Face model folder (``config.json``, ``generation_config.json``,
``model.safetensors``) with the source tokenizer beside it (``tokenizer.json``...), so
``AutoTokenizer.from_pretrained(folder)`` gives the tokenizer of the model's inputs; a separate
target vocabulary is in ``target_tokenizer/``. Lantern's training run adds the files below.
"""

TARGET_TOKENIZER_DIR = "target_tokenizer"
META_FILE = "lantern.json"  # title, languages, corpus: what the model picker shows
TRAINING_COUNTS = "training_counts.json"  # token -> occurrences in the training split, per side
HISTORY_FILE = "history.json"  # training and validation records of the run
SCORES_FILE = "scores.json"  # test scores with their sacreBLEU signatures
CARD_FILE = "README.md"  # the model card
TRAINING_CONFIG = "training_config.json"  # the run's config: enough to rebuild its data split from the data root
TRACIN_DIR = "tracin"  # weight snapshots taken during training, with their learning rates (``tracin.json``)
TRACIN_FILE = "tracin.json"
