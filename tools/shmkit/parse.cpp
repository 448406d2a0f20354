#include "parse.hpp"

namespace shmkit_tool {

namespace po = boost::program_options;

namespace {

/// The hidden option that takes the operands. A single operand is a plain
/// string, so that it cannot be given twice (as a second --NAME): the
/// commands taking one TARGET have always refused that.
void add_operand(po::options_description& all, const char* operand, int max_operands)
{
    if (max_operands == 1) all.add_options()(operand, po::value<std::string>());
    else all.add_options()(operand, po::value<std::vector<std::string>>());
}

std::vector<std::string> operands_of(const po::variables_map& vm, const char* operand, int max_operands)
{
    if (max_operands == 0 || !vm.count(operand)) return {};
    if (max_operands == 1) return {vm[operand].as<std::string>()};
    return vm[operand].as<std::vector<std::string>>();
}

} // namespace

parsed_args parse_command_args(const args& a, const po::options_description& visible, const char* operand,
                               int max_operands)
{
    po::options_description all;
    all.add(visible);
    po::positional_options_description pos;
    if (max_operands != 0) {
        add_operand(all, operand, max_operands);
        pos.add(operand, max_operands);
    }
    parsed_args p;
    po::store(po::command_line_parser(a).options(all).positional(pos).run(), p.vm);
    po::notify(p.vm);
    p.help = p.vm.count("help") > 0;
    p.positional = operands_of(p.vm, operand, max_operands);
    return p;
}

} // namespace shmkit_tool
