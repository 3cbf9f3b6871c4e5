// libtorch's autocast switches for a device and dtype. tch only exposes the
// deprecated CUDA-only, float16-only switch; bf16 (and autocast on the CPU)
// need these. Declared here instead of including ATen (which would add half a
// minute to every build); the signatures are libtorch's exported ones
// (at/autocast_mode.h), the enum values those of c10 (CPU = 0, CUDA = 1;
// Half = 5, BFloat16 = 15).
#include <cstdint>

namespace c10 {
enum class DeviceType : int8_t;
enum class ScalarType : int8_t;
}  // namespace c10

namespace at {
namespace autocast {
bool is_autocast_enabled(c10::DeviceType device_type);
void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
void clear_cache();
int increment_nesting();
int decrement_nesting();
}  // namespace autocast
}  // namespace at

extern "C" {

// Enables autocast on `device` (0 CPU, 1 CUDA) with `dtype` (5 half, 15
// bfloat16); returns whether it was enabled before. 0 on success.
int melxai_autocast_enter(int8_t device, int8_t dtype, bool* was_enabled) {
  try {
    auto d = static_cast<c10::DeviceType>(device);
    *was_enabled = at::autocast::is_autocast_enabled(d);
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::set_autocast_dtype(d, static_cast<c10::ScalarType>(dtype));
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Restores the state saved by melxai_autocast_enter; drops the cast cache
// when the outermost region ends (as torch.autocast does).
int melxai_autocast_exit(int8_t device, bool was_enabled) {
  try {
    auto d = static_cast<c10::DeviceType>(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(d, was_enabled);
    return 0;
  } catch (...) {
    return -1;
  }
}
}
