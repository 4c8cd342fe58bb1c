__version__ = "0.0.1"

import warnings
# torch deprecates `torch.jit.script`, which fastai's own import calls: a FutureWarning no learner can act on
warnings.filterwarnings('ignore', message='.*torch.jit.script.*', category=FutureWarning)
