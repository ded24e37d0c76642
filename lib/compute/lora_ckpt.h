/* lora_ckpt.h — a LoRA run's adapter as PEFT's files, and the checkpoints a
 * run resumes from.
 *
 * The adapter (rl_lmodel_save) is a PEFT LoRA directory: adapter_config.json
 * and adapter_model.safetensors holding every A and B in f32 under PEFT's
 * names, which peft.PeftModel.from_pretrained loads unchanged and
 * rl_adapter_open reads back.
 *
 * A checkpoint is a directory holding that adapter, optimizer.safetensors
 * (both AdamW moments of each tensor: "<name>.exp_avg", "<name>.exp_avg_sq",
 * f32) and trainer_state.json: {"step": t, "settings": {...}}, the settings
 * being whatever the caller says decides the run's course (data, schedule,
 * seed, ...). It is built in a new directory that then takes the old one's
 * place in one rename (model_files.h): a kill leaves the previous checkpoint
 * or the new one, whole. Reading one back restores the adapter, the moments
 * and the step count, so that a run resumed from it goes on exactly as the
 * uninterrupted run would have (the dropout masks and the data order depend
 * only on the seed and the step).
 */
#ifndef RL_LORA_CKPT_H
#define RL_LORA_CKPT_H

#include <cJSON.h>

#include "compute/lora_train.h"
#include "store/adapter.h"

/* Writes m's adapter into dir (which must exist); base_name goes into
 * adapter_config.json's base_model_name_or_path. */
int rl_lmodel_save(const rl_lmodel *m, const char *dir, const char *base_name);

/* Sets m's A and B from ad, which must hold exactly m's tensors (rank,
 * modules, shapes): RL_EDATA naming the first that differs. */
int rl_lmodel_load_adapter(rl_lmodel *m, const rl_adapter *ad);

/* Writes a checkpoint of m into dir (replacing it). */
int rl_lmodel_checkpoint_write(const rl_lmodel *m, const char *dir, const char *base_name,
			       const cJSON *settings);
/* Reads the checkpoint in dir into m (its adapter, moments and step count
 * m->t). RL_EDATA when it is damaged or of another run: a setting that
 * differs from settings is named. */
int rl_lmodel_checkpoint_read(rl_lmodel *m, const char *dir, const cJSON *settings);

#endif
