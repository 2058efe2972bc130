/**
 * The model catalog. Importing this module registers every architecture; adding a model is its
 * file plus one import line here.
 */
import './small-cnn.ts';
import './resnet.ts';
import './mobilenetv2.ts';
import './mobilenetv3.ts';
import './efficientnet.ts';
import './convnext.ts';
import './vit.ts';

export { createModel, listModels, modelMeta, registerModel, type ModelFactory, type ModelMeta, type ResolvedOptions } from './registry.ts';
export { countParams, trainableSet, CreateOptionsSchema, TrainableSchema, IMAGENET_MEAN, IMAGENET_STD, type CreateOptions, type ModelSpec, type Trainable } from './spec.ts';
export { featuresOf, replaceHead, type Features, type HeadBuilder } from './head.ts';
export { importOnnxBackbone, importOnnxBytes, ImportOptionsSchema, type ImportOptions } from './import-onnx.ts';
