# fish completion for bootc. Install: bootc completion fish > ~/.config/fish/completions/bootc.fish
# bootc only lists names while completing: it never runs a command.
function __bootc_complete
	set -l words (commandline -opc)
	bootc $words[2..-1] (commandline -ct) --generate-bash-completion 2>/dev/null
end
complete -c bootc -a '(__bootc_complete)'
