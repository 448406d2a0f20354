// Error category and throwing helpers.
#include <shmkit/error.hpp>

namespace shmkit {
namespace {

class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "shmkit"; }

    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::not_a_segment: return "not a shmkit segment";
        case errc::truncated: return "segment truncated";
        case errc::foreign_platform: return "segment created on another platform";
        case errc::version_mismatch: return "format version mismatch";
        case errc::corrupt_header: return "corrupted segment header";
        case errc::kind_mismatch: return "structure kind mismatch";
        case errc::type_mismatch: return "element type mismatch";
        case errc::capacity_mismatch: return "capacity mismatch";
        case errc::not_initialised: return "segment not initialised";
        case errc::attach_table_full: return "attach table full";
        case errc::not_supported: return "operation not supported";
        case errc::slot_not_allocated: return "slot not allocated";
        }
        return "unknown shmkit error";
    }
};

} // namespace

const std::error_category& error_category() noexcept
{
    static const category_impl instance;
    return instance;
}

error::error(std::error_code ec, const std::string& where, const std::string& what)
    : std::system_error(ec, "shmkit: " + where + ": " + what), where_(where)
{
}

namespace detail {

void throw_errno(int err, const std::string& where, const std::string& what)
{
    // std::system_error appends the code's message (strerror) itself.
    throw error(std::error_code(err, std::generic_category()), where, what);
}

void throw_error(errc e, const std::string& where, const std::string& what)
{
    throw error(make_error_code(e), where, what);
}

} // namespace detail
} // namespace shmkit
