// Declarations only (include/CTroveFuzz.h): libFuzzer provides the function when trove-fuzz is built for fuzzing.
