"""Car-ready models: export to the physical car, ONNX and DeepRacer-on-AWS; import existing models.

    spec        framework-neutral weights in TF layout with RL-Coach names (the one conversion)
    tfgraph     the car's frozen TF1 graph and RL-Coach checkpoints (TensorFlow: `drlocal[car]`)
    onnx_graph  the same network as ONNX (onnx, onnxruntime: `drlocal[car]`)
    graphdef    reads frozen graphs without TensorFlow
    car         archives, the DeepRacer-on-AWS folder, and the TF/OpenVINO/TFLite/ONNX checks
    importer    model.tar.gz / model.pb / model folders -> a drlocal model prefix
    drfc        DRfC / SageMaker checkpoints (TF checkpoint, model_<N>.pb) read in place and written
    droa        training_params.yaml as DeepRacer-on-AWS and the simapp need it

TensorFlow, OpenVINO and onnx are imported only inside the functions that need them, so
`import drlocal` (and `drlocal.load_model` on any model) works without the extra.
"""

from drlocal.export.spec import PolicySpec, spec_from_torch, torch_from_spec

__all__ = ["PolicySpec", "spec_from_torch", "torch_from_spec"]
