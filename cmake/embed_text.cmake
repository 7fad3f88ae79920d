# Turns a text file into a C++ source defining
#   std::string_view kiln::embedded::<name>()
# where <name> is the file's base name with non-identifier characters as '_'.
file(READ ${IN} CONTENT HEX)
get_filename_component(NAME ${IN} NAME)
string(MAKE_C_IDENTIFIER ${NAME} IDENT)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BYTES "${CONTENT}")
file(WRITE ${OUT}
  "// Generated from ${NAME}; do not edit.\n"
  "#include <string_view>\n"
  "namespace kiln::embedded {\n"
  "static const char k${IDENT}[] = {${BYTES} 0};\n"
  "std::string_view ${IDENT}() { return {k${IDENT}, sizeof k${IDENT} - 1}; }\n"
  "}  // namespace kiln::embedded\n")
