"""What feeds models: in-memory and folder datasets (``datasets``), MONAI transforms and their inverses
(``transforms``), intensity windows (``intensity``), MNIST IDX files (``mnist``), paired subjects for synthesis
(``paired``), the public lung sets' layouts (``lung_datasets``), and patient tables and splits (``patients``).
"""
